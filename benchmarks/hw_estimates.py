"""Compile time (QONNX -> estimates) and estimated FPS / LUT per variant on a board.

For each variant: export (a zoo checkpoint if one exists, else the untrained model:
estimates do not depend on the weight values), then `hw` build through the 'estimates'
step with the default folding (fastest within --budget of the board), timed. Writes
``benchmarks/results/hw_estimates_<board>.{json,md}``. All resource and FPS numbers are
FINN-style analytical estimates, not synthesis or board measurements.

    python benchmarks/hw_estimates.py --board pynq-z2
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["bnn_cnv_s", "groupnet_cnv_s_k2", "groupnet_cnv_s_k4",
           "bnn_cnv", "groupnet_cnv_k2", "groupnet_cnv_k4"]
# finn-examples, CNV-w1a1 (CIFAR-10) on Pynq-Z1 at 100 MHz, measured on the board by the
# FINN authors (not by this project): about 3,000 images/s.
FINN_REFERENCE = {"variant": "FINN CNV-w1a1 (finn-examples, Pynq-Z1, board-measured)",
                  "fps": 3000, "source": "finn-examples published result, not measured here"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=DEFAULT)
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--budget", type=float, default=0.7)
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()

    import torch

    from groupnet.flow import estimate
    from groupnet.hw.build import Build
    from groupnet.models import create_model
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.export import export_qonnx

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            zoo = ROOT / "models" / "zoo" / f"{variant}.pt"
            if zoo.exists():
                model, _ = load_checkpoint(zoo)
                source = "zoo checkpoint"
            else:
                torch.manual_seed(0)
                model = create_model(variant).eval()
                source = "untrained (estimates only)"
            t0 = time.perf_counter()
            onnx = export_qonnx(model, Path(tmp) / f"{variant}.onnx")
            export_s = time.perf_counter() - t0
            out = Path(tmp) / variant
            t0 = time.perf_counter()
            row = {"variant": variant, "weights": source, "export_s": round(export_s, 1)}
            est = estimate(onnx, args.board, out, budget=args.budget)
            if not est["fits"]:
                row.update({"compile_s": round(time.perf_counter() - t0, 1),
                            "fits": False, "note": est["error"]})
                rows.append(row)
                print(f"{variant}: does not fit: {est['error']}", flush=True)
                continue
            compile_s = time.perf_counter() - t0
            times = Build.open(out).report("time_per_step.json")
            row.update({"compile_s": round(compile_s, 1), "fits": True,
                        "fps": round(est["fps"]), "latency_us": round(est["latency_us"], 1),
                        "lut": est["lut"], "bram18": est["bram18"], "dsp": est["dsp"],
                        "lut_pct": round(100 * est["utilization"]["lut"], 1),
                        "bram_pct": round(100 * est["utilization"]["bram18"], 1),
                        "bottleneck": est["bottleneck"], "steps_s": times})
            rows.append(row)
            print(f"{variant}: {row['fps']} FPS, {row['lut']} LUT, {row['bram18']} BRAM18, "
                  f"compile {row['compile_s']} s (+ export {row['export_s']} s)", flush=True)

    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    meta = {"board": args.board, "clock_mhz": 100.0, "budget": args.budget,
            "machine": f"{platform.machine()}, {platform.python_version()}",
            "kind": "analytical estimates (FINN models + groupnet models), not synthesis",
            "reference": FINN_REFERENCE, "rows": rows}
    (results / f"hw_estimates_{args.board}.json").write_text(json.dumps(meta, indent=2) + "\n")
    lines = ["| variant | weights | est. FPS @100 MHz | est. latency | LUT | BRAM18 | "
             "compile (QONNX -> estimates) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["fits"]:
            lines.append(f"| `{r['variant']}` | {r['weights']} | {r['fps']:,} | "
                         f"{r['latency_us']} us | {r['lut']:,} ({r['lut_pct']}%) | "
                         f"{r['bram18']} ({r['bram_pct']}%) | {r['compile_s']} s |")
        else:
            lines.append(f"| `{r['variant']}` | {r['weights']} | does not fit "
                         f"{args.budget:.0%} of {args.board} | | | | {r['compile_s']} s |")
    lines.append(f"| {FINN_REFERENCE['variant']} | | ~{FINN_REFERENCE['fps']:,} (board) | | | | |")
    (results / f"hw_estimates_{args.board}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
