"""No committed record holds this machine's paths: ``portable`` at write time, and a check
over every committed file under models/, benchmarks/results/, docs/ and notebooks/."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from groupnet.paths import portable

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("models", "benchmarks/results", "docs", "notebooks", "builds")
# home folders, CI checkouts and temporary folders of any machine, and this checkout itself
MACHINE = re.compile(rb"(?<![\w.~])/(?:home|root|Users|work|check)/[\w.-]+|"
                     rb"/tmp/(?:tmp[\w]{6,}|pytest-of-)")


def test_portable_rewrites_paths_under_the_root(tmp_path):
    rec = {"teacher": str(tmp_path / "zoo" / "t.pt"), "n": 3, "other": "/dev/ttyUSB0",
           "list": [str(tmp_path), Path(tmp_path / "a")], "text": "not a path"}
    out = portable(rec, tmp_path)
    assert out == {"teacher": "zoo/t.pt", "n": 3, "other": "/dev/ttyUSB0",
                   "list": [".", Path("a")], "text": "not a path"}


def _committed() -> list[Path]:
    try:
        names = subprocess.run(["git", "ls-files", *CHECKED], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def test_no_committed_file_holds_a_machine_path():
    here = str(ROOT).encode()
    bad = []
    for path in _committed():
        data = path.read_bytes()          # checkpoints too: their metrics are pickled text
        hit = MACHINE.search(data)
        if here in data or hit:
            bad.append(f"{path.relative_to(ROOT)}: {(hit.group() if hit else here).decode()}")
    assert not bad, "absolute machine paths in committed files (write them with " \
                    "groupnet.paths.portable):\n" + "\n".join(bad)
