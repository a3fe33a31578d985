"""The same small sweep serially and on a 2-worker Dask LocalCluster, side by side in one
run: wall time from the first point submitted to the front written (cluster start-up
included), both on fresh folders.

    python benchmarks/explore_speed.py [--workers 2] [--train-limit 3000]

The points are tiny variants trained on real Fashion-MNIST images (1 epoch on 3,000 images)
and built through FINN's estimates for Pynq-Z2; every point runs with one torch thread in
both modes. Writes ``benchmarks/results/explore_speed.{json,md}``. Run it on an otherwise
idle machine: a busy core is a slower worker.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

SPACE = [{"variant": "test_bnn_cnv"},
         {"variant": "test_groupnet_cnv", "k": [2, 3, 4], "agg_bits": [2, 3]},
         {"variant": "test_groupnet_cnv_sg", "k": 2}]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=3000)
    args = ap.parse_args()
    from groupnet.explore import load_spec, run_sweep

    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "speed.yaml"
        spec_path.write_text(yaml.safe_dump({
            "name": "speed", "space": SPACE, "boards": ["pynq-z2"], "simulate": "none",
            "train": {"epochs": 1, "train_limit": args.train_limit, "test_limit": 2000,
                      "eval_subset": 500}}))
        spec = load_spec(spec_path)
        runs = {}
        for mode, kind, workers in (("serial", "serial", None),
                                    (f"Dask LocalCluster, {args.workers} workers", "local",
                                     args.workers)):
            t0 = time.perf_counter()
            summary = run_sweep(spec, Path(tmp) / kind, executor=kind, workers=workers)
            wall = time.perf_counter() - t0
            ok = sum(r["status"] == "ok" for r in summary["rows"])
            runs[kind] = {"mode": mode, "wall_s": wall, "points": len(spec.points),
                          "ok": ok, "point_seconds": sum(r.get("seconds", 0) for r in
                                                         summary["rows"])}
            print(f"{mode}: {wall:.1f} s for {len(spec.points)} points ({ok} ok)", flush=True)
    speedup = runs["serial"]["wall_s"] / runs["local"]["wall_s"]
    result = {"runs": runs, "speedup": speedup, "target": 1.6, "met": speedup >= 1.6,
              "cpus": os.cpu_count(), "python": platform.python_version(),
              "load_average_after": os.getloadavg()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "explore_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| executor | points | wall time | speed-up | sum of point times |",
             "|---|---|---|---|---|"]
    for kind, r in runs.items():
        lines.append(f"| {r['mode']} | {r['points']} ({r['ok']} ok) | {r['wall_s']:.0f} s | "
                     f"{runs['serial']['wall_s'] / r['wall_s']:.2f}x | "
                     f"{r['point_seconds']:.0f} s |")
    lines += ["", f"Measured by `benchmarks/explore_speed.py` on {os.cpu_count()} cores, one "
                  "run, both modes back to back; a point's time is its own "
                  "wall time, where it ran (target >= 1.6x: "
                  f"{'met' if speedup >= 1.6 else 'NOT met'})."]
    (RESULTS / "explore_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
