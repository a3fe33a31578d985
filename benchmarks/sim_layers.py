"""Per-layer cycles per frame: simulated (each layer alone) against FINN's estimate.

For each variant: export the zoo checkpoint, build for the board through 'estimates'
(default folding), then simulate every layer of the dataflow graph alone in Verilator
(``groupnet.hw.sim.layers``: input always valid, output always taken, 4 frames of random
data; layers identical in type, attributes and shapes are simulated once) and put its
steady-state cycles per frame beside FINN's ``exp_cycles`` (``report/estimates.json``)
and, where FINN's formula is off (the sliding-window generator), this project's own
(``hw.estimates.swg_frame_cycles``), grouped by layer kind. This project's models for
DuplicateStreams, ElementwiseAdd and Pool estimate resources; their cycles are FINN's.
Writes ``benchmarks/results/sim_layers_<board>.{json,md}``.

    python benchmarks/sim_layers.py --board pynq-z2
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
TOLERANCE = 0.10          # the target: simulated within 10% of the estimate


def by_kind(rows: list[dict]) -> list[dict]:
    """Per layer kind: how many layers, the range of simulated / FINN's estimate and of
    simulated / the estimate used (this project's where FINN's is off, else FINN's)."""
    kinds: dict[str, list[dict]] = {}
    for r in rows:
        kinds.setdefault(r["op_type"], []).append(r)
    return [{"op_type": k, "layers": len(rs),
             "finn_ratio": [min(r["finn_ratio"] for r in rs), max(r["finn_ratio"] for r in rs)],
             "ratio": [min(r["ratio"] for r in rs), max(r["ratio"] for r in rs)],
             "own_model": any(r["own_cycles"] is not None for r in rs),
             "within_10pct": all(abs(r["ratio"] - 1) <= TOLERANCE for r in rs)}
            for k, rs in sorted(kinds.items())]


def markdown(results: list[dict]) -> str:
    lines = ["| variant | layer kind | layers | simulated / FINN estimate | "
             "simulated / own estimate | within 10% |", "|---|---|---|---|---|---|"]
    for res in results:
        for k in res["kinds"]:
            own = f"{k['ratio'][0]:.3f} - {k['ratio'][1]:.3f}" if k["own_model"] else "(FINN's)"
            lines.append(f"| `{res['variant']}` | {k['op_type']} | {k['layers']} | "
                         f"{k['finn_ratio'][0]:.3f} - {k['finn_ratio'][1]:.3f} | {own} | "
                         f"{'yes' if k['within_10pct'] else '**no**'} |")
    lines += ["", "| variant | layer | kind | PE | SIMD | FINN estimate | own estimate | "
              "simulated alone | sim / FINN | sim / own |", "|---" * 10 + "|"]
    for res in results:
        for r in res["layers"]:
            own = r["own_cycles"] is not None
            own_cycles, own_ratio = (r["own_cycles"], f"{r['ratio']:.3f}") if own else ("", "")
            lines.append(f"| `{res['variant']}` | {r['name']} | {r['op_type']} | "
                         f"{r['pe'] or ''} | {r['simd'] or ''} | {r['finn_cycles']} | "
                         f"{own_cycles} | {r['cycles_per_frame']:.0f} | "
                         f"{r['finn_ratio']:.3f} | {own_ratio} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["groupnet_cnv_s_k2", "groupnet_cnv_s_k4"])
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()

    from groupnet.flow import build_zoo_model
    from groupnet.hw.sim.layers import layer_cycles

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            out, _ = build_zoo_model(variant, args.board, tmp)
            t0 = time.perf_counter()
            rows = layer_cycles(out, args.frames)
            results.append({"variant": variant, "kinds": by_kind(rows), "layers": rows,
                            "seconds": round(time.perf_counter() - t0, 1)})
            print(json.dumps(results[-1]["kinds"]), flush=True)
    out_dir = Path(args.results)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"sim_layers_{args.board}.json").write_text(json.dumps(
        {"board": args.board, "machine": f"{platform.machine()}, {platform.python_version()}",
         "kind": "each layer simulated alone (Verilator, cycle-accurate) vs FINN's exp_cycles",
         "frames": args.frames, "results": results}, indent=2) + "\n")
    text = markdown(results)
    (out_dir / f"sim_layers_{args.board}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
