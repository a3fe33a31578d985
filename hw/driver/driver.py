#!/usr/bin/env python3
"""Run the accelerator in this folder (FINN-style flags; `python driver.py -h`)."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from groupnet_driver.cli import main  # noqa: E402

sys.exit(main(default_dir=HERE))
