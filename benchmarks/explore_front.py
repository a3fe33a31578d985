"""The accuracy x LUT x FPS front on Fashion-MNIST for Pynq-Z2 and ZCU104: the zoo's trained
models plus the points the sweep trains (``benchmarks/specs/fashion_front.yaml``), through
``groupnet explore``; the front's points simulated in Verilator.

    python benchmarks/explore_front.py [--workers N]

Resumable (the sweep folder is ``runs/explore/fashion-front``: run it again after an
interruption, or after a new zoo checkpoint, and only what is new is evaluated). Writes
``benchmarks/results/front_fashion-mnist.{md,json,png}``; the README's model table is
that file (``make results``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "benchmarks" / "specs" / "fashion_front.yaml"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "explore" / "fashion-front"))
    ap.add_argument("--workers", type=int, help="local Dask workers (default: one per core)")
    ap.add_argument("--name", default="front_fashion-mnist")
    args = ap.parse_args()

    from groupnet.explore import load_spec, run_sweep
    spec = load_spec(args.spec)
    summary = run_sweep(spec, args.out, workers=args.workers)
    out = Path(args.out)
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = (out / "front.md").read_text()
    note = ("Accuracy: the full 10,000-image test set (each checkpoint's own metrics). FPS "
            "and LUT: FINN's estimates at the default budget (70% of the board) and the "
            "board's clock; FPS (sim.): Verilator simulation of the front's points "
            f"({spec.simulate['frames']} real test images, bit-exact with the HW graph). "
            "`weights`: given = a zoo checkpoint, trained = trained by this sweep "
            f"({spec.train['epochs']} epochs, distilled from `{Path(spec.train['teacher']).name}`), "
            "untrained = random weights (hardware cost only). Not place-and-routed: no "
            "Vivado here.")
    (RESULTS / f"{args.name}.md").write_text(table + "\n" + note + "\n")
    # one board per file too (the README shows the smallest board's)
    from groupnet.explore import pareto
    from groupnet.paths import portable
    for board in spec.boards:
        rows = [r for r in summary["rows"] if r["board"] == board]
        text = pareto.table(rows, summary["simulations"]).split("\n", 2)[2]   # no heading
        (RESULTS / f"{args.name}_{board}.md").write_text(text)
    keep = dict(summary)
    keep["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    (RESULTS / f"{args.name}.json").write_text(
        json.dumps(portable(keep, ROOT), indent=1, default=str) + "\n")
    if (out / "front.png").exists():
        shutil.copyfile(out / "front.png", RESULTS / f"{args.name}.png")
    print(table)
    print(f"wrote {RESULTS / args.name}.{{md,json,png}} ({summary['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
