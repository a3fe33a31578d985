"""FINN's BNN-PYNQ networks (TFC-w1a1, CNV-w1a1) through the Vivado-free flow, measured.

For each network: brevitas_examples' model with random weights and randomized batch-norm
statistics (the pretrained weights are a download), exported FINN's way
(``models/finn_examples.py``), built for the board with finn-examples' folding
(``builds/finn_examples/``), verified bit-exactly on real Fashion-MNIST images (padded and
repeated to 3x32x32 for CNV), then simulated in Verilator: default (unsized, depth-2)
FIFOs, and after ``size_fifos``. Records FINN's analytical bound, simulated cycles per
frame and FPS, FINN's LUT / BRAM18 estimates and simulation speed (cycles per second of
wall time, one core, on a machine that may be shared: see ``host_load``). With
``--synth``: Yosys ``synth_xilinx`` of every layer but the sliding-window generators
(FINN's RTL), summed beside FINN's estimates of the same layers (pre-place-and-route
counts; the weight memories become block RAM where Yosys infers it).
Writes ``benchmarks/results/finn_models_<board>.{json,md}``.

    python benchmarks/finn_models.py --board pynq-z1 --frames 20 --synth cnv_1w1a
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NETS = {"tfc_1w1a": "tfc_1w1a_folding.json", "cnv_1w1a": "cnv_1w1a_folding.json"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", nargs="+", default=list(NETS), choices=list(NETS),
                    help="networks to build and simulate (default: both)")
    ap.add_argument("--board", default="pynq-z1", help="the board to build for")
    ap.add_argument("--frames", type=int, default=20, help="real test images to simulate")
    ap.add_argument("--synth", nargs="*", default=[], choices=list(NETS),
                    help="networks whose layers Yosys synthesizes (minutes per layer)")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"),
                    help="folder of the results files")
    args = ap.parse_args()

    os.environ["GROUPNET_CACHE"] = tempfile.mkdtemp(prefix="groupnet-bench-cache-")
    from groupnet.flow import build_model
    from groupnet.hw.build import Build, BuildConfig
    from groupnet.hw.sim.run import simulate, size_fifos
    from groupnet.hw.synth import own_layers
    from groupnet.models.data import load_dataset
    from groupnet.models.finn_examples import (NETWORKS, bnn_pynq, export_finn_style,
                                               fashion_mnist_like)

    test, _ = load_dataset("fashion-mnist", "test", limit=args.frames)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.networks:
            onnx = export_finn_style(bnn_pynq(name), Path(tmp) / f"{name}.onnx", NETWORKS[name])
            images = fashion_mnist_like(test, NETWORKS[name])
            out = Path(tmp) / name
            cfg = BuildConfig(model=str(onnx), out=str(out), board=args.board,
                              folding=str(ROOT / "builds" / "finn_examples" / NETS[name]),
                              to_step="estimates")
            t0 = time.perf_counter()
            build_model(cfg, images=images[:10], progress=False)
            build_s = time.perf_counter() - t0
            build = Build.open(out)
            ver, est = build.report("verification.json"), build.estimates()
            load0 = os.getloadavg()[0]
            unsized = simulate(out, images)
            sizing = size_fifos(out, images[:min(10, len(images))])
            sized = simulate(out, images)
            rows.append({
                "network": name, "board": args.board, "clock_mhz": est["clock_mhz"],
                "weights": "random, randomized batch-norm statistics",
                "verified_bit_exact": all(v["bit_exact"] for v in ver.values()),
                "verified_images": min(v["n"] for v in ver.values()),
                "bound_cycles_per_frame": est["max_cycles"],
                "estimated_bottleneck": est["bottleneck"],
                "estimated_fps": round(est["fps"]),
                "finn_lut": est["lut"], "finn_bram18": est["bram18"],
                "build_s": round(build_s, 1),
                "unsized": _sim(unsized), "sized": _sim(sized),
                "fifo_entries": sizing["total_fifo_entries"],
                "host_load": round(load0, 2),
            })
            if name in args.synth:
                rows[-1]["yosys"] = own_layers(out, on_layer=lambda r: print(
                    json.dumps(r), flush=True))
            print(json.dumps(rows[-1]), flush=True)

    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "cpu_count": os.cpu_count(),
            "frames": args.frames}
    stem = results / f"finn_models_{args.board}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2)
                                         + "\n")
    stem.with_suffix(".md").write_text(table(rows, args.frames) + "\n")
    print(table(rows, args.frames))
    return 0


def _sim(res: dict) -> dict:
    return {"bit_exact": res["bit_exact"], "frames": res["frames"],
            "cycles_per_frame": res["cycles_per_frame"], "fps": round(res["fps"]),
            "latency_cycles": res["latency_cycles"],
            "simulated_bottleneck": res["simulated_bottleneck"],
            "sim_cycles_per_s": round(res["sim_cycles_per_s"]),
            "verilator_build_s": round(res["verilator_build_s"], 1)}


def table(rows: list[dict], frames: int) -> str:
    lines = [f"FINN's BNN-PYNQ networks, finn-examples' folding, {frames} real images "
             "(random weights): FINN's estimates and this project's Verilator simulation "
             "(`benchmarks/finn_models.py`).", "",
             "| network | board, clock | bit-exact (stages / RTL) | FINN bound cycles/frame "
             "| simulated, default FIFOs | simulated, sized FIFOs | simulated FPS (sized) | "
             "FINN est. LUT | FINN est. BRAM18 | sim speed, default / sized (M cycles/s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        u, s = r["unsized"], r["sized"]
        exact = ("yes" if r["verified_bit_exact"] else "NO") + " / " + \
            ("yes" if u["bit_exact"] and s["bit_exact"] else "NO")
        lines.append(
            f"| {r['network']} | {r['board']}, {r['clock_mhz']:g} MHz | {exact} | "
            f"{r['bound_cycles_per_frame']:,} | {u['cycles_per_frame']:,.0f} | "
            f"{s['cycles_per_frame']:,.0f} | {s['fps']:,} | {r['finn_lut']:,} | "
            f"{r['finn_bram18']} | {u['sim_cycles_per_s'] / 1e6:.2f} / "
            f"{s['sim_cycles_per_s'] / 1e6:.2f} |")
    synthesized = [r for r in rows if "yosys" in r]
    if synthesized:
        lines += ["", "Yosys `synth_xilinx` of this project's RTL for the same layers (window "
                  "generators excluded: FINN's RTL), pre-place-and-route, beside FINN's "
                  "estimates:", "",
                  "| network | layers | Yosys LUT + LUTRAM | Yosys BRAM18 | FINN est. LUT "
                  "| FINN est. BRAM18 | LUT ratio |", "|---|---|---|---|---|---|---|"]
        for r in synthesized:
            y, t = r["yosys"], r["yosys"]["total"]
            lines.append(f"| {r['network']} | {len(y['layers'])} | {t['lut']:,} + "
                         f"{t['lutram']:,} | {t['bram18']} | {t['finn_lut']:,} | "
                         f"{t['finn_bram18']} | {y['lut_ratio']:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
