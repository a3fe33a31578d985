"""Write each committed build's ``folding.json`` from its config (never by hand).

For every ``builds/<board>/<variant>/build.yaml`` (or the ones named), build the model
for the board with the default budget search through 'estimates' and write the folding
FINN chose beside the config. `tests/builds/test_build_configs.py` checks that the
committed files equal what this gives.

    python builds/update_foldings.py                       # all
    python builds/update_foldings.py builds/pynq-z2/groupnet_cnv_s_k4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="*", help="builds/<board>/<variant> folders (default: all)")
    args = ap.parse_args()
    from groupnet.flow import derive_folding
    folders = [Path(c) for c in args.configs] or sorted(
        p.parent for p in (ROOT / "builds").glob("*/*/build.yaml"))
    for folder in folders:
        with tempfile.TemporaryDirectory() as tmp:
            folding = derive_folding(folder / "build.yaml", tmp)
        (folder / "folding.json").write_text(json.dumps(folding, indent=2) + "\n")
        print(f"{folder.relative_to(ROOT)}/folding.json: {len(folding)} layers")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
