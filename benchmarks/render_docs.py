"""Put the measured tables into the docs: every block

    <!-- include benchmarks/results/NAME.md -->
    ...
    <!-- end include -->

in README.md and docs/*.md is replaced by the current content of that results file (which
a benchmark script wrote). The docs never hold a hand-copied number table.

    python benchmarks/render_docs.py          # rewrite the docs (`make results`)
    python benchmarks/render_docs.py --check  # exit 1 if a doc is out of date (a test)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- include (?P<path>[^ ]+) -->\n)(?P<body>.*?)(<!-- end include -->)",
                   re.S)


def boards_table() -> str:
    """The board table, from hw/boards.py (the one place the boards live)."""
    from groupnet.hw.boards import BOARDS
    rows = ["| board | part | LUT | FF | BRAM18 | URAM | DSP | default clock | PYNQ image | "
            "shell |", "|---|---|---|---|---|---|---|---|---|---|"]
    for b in BOARDS.values():
        name = f"`{b.name}` ({b.finn_name})" if b.finn_name else f"`{b.name}`"
        lut = f"{b.lut:,} LUT4" if b.is_ecp5 else f"{b.lut:,}"
        rows.append(f"| {name} | {b.part} | {lut} | {b.ff:,} | "
                    f"{b.bram18} | {b.uram} | {b.dsp:,} | {b.clock_mhz:.0f} MHz | {b.pynq} | "
                    f"{b.shell} |")
    return "\n".join(rows)


GENERATED = {"hw:boards": boards_table}


def render(text: str, root: Path = ROOT) -> str:
    def fill(m: re.Match) -> str:
        if m.group("path") in GENERATED:
            return m.group(1) + GENERATED[m.group("path")]().strip() + "\n" + m.group(4)
        src = root / m.group("path")
        if not src.is_file():
            return m.group(1) + "_Not measured yet: run the script named above._\n" + m.group(4)
        return m.group(1) + src.read_text().strip() + "\n" + m.group(4)
    return BLOCK.sub(fill, text)


def docs(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    stale = []
    for path in docs():
        old = path.read_text()
        new = render(old)
        if new != old:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print("out of date (run `make results`): " + ", ".join(map(str, stale)))
        return 1
    print(("updated: " + ", ".join(map(str, stale))) if stale else "docs up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
