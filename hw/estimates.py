"""Per-layer and total estimates: cycles, FPS, latency, LUT/BRAM/DSP.

Cycles and most resources come from FINN's analytical models (``get_exp_cycles``,
``node_res_estimation``). FINN reports 0 LUT for ``DuplicateStreams``, ``Pool`` and the
elementwise layers; for those this module uses its own analytical models (documented
below and marked ``"estimator": "groupnet"`` in the report). Everything here is an
estimate before synthesis, not a measurement.
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from groupnet.errors import UserError

from .boards import Board
from .topology import base_op, label_layers


def _own_estimate(node, inst) -> dict | None:
    """Analytical LUT/FF for layers FINN estimates at 0.

    - DuplicateStreams, K outputs of W bits: one registered output slice per stream
      (W FFs and ~W/2 LUTs for the load mux) plus K-input ready/valid logic.
    - Elementwise add of PE lanes, b-bit result: one LUT per result bit per lane (carry
      chain) and a registered result; inputs are buffered (2 x input width FFs).
    - Max pool of PE channels over a k x k window, b-bit values: a b-bit comparator and
      a b-bit running-max register per lane (1-bit binary max is an OR: 1 LUT per lane).
    """
    op = base_op(node.op_type)
    if op == "DuplicateStreams":
        k = int(inst.get_nodeattr("NumOutputStreams"))
        w = int(inst.get_outstream_width())
        return {"LUT": k * (w // 2 + 2) + 2, "FF": k * (w + 1), "BRAM_18K": 0, "DSP": 0}
    if op.startswith("Elementwise"):
        out_bits = inst.get_output_datatype().bitwidth()
        pe = int(inst.get_nodeattr("PE"))
        in_w = int(inst.get_instream_width(0)) + int(inst.get_instream_width(1))
        return {"LUT": pe * out_bits + 4, "FF": pe * out_bits + in_w, "BRAM_18K": 0, "DSP": 0}
    if op == "Pool":
        pe = int(inst.get_nodeattr("PE"))
        bits = inst.get_input_datatype().bitwidth()
        per_lane = 1 if bits == 1 else 2 * bits
        return {"LUT": pe * per_lane + 8, "FF": pe * bits + 16, "BRAM_18K": 0, "DSP": 0}
    return None


def swg_frame_cycles(inst) -> int | None:
    """Cycles per frame in steady state of FINN's RTL sliding-window generator (2D,
    "default" style; None for the others, where FINN's formula holds).

    FINN's ``exp_cycles`` for this style is the line-buffer fill (``buffer_min_size``, and
    for depthwise windows (stride_h - 1) more input rows) plus OFM_h rows of max(output
    beats, input beats) each: the time of one frame alone. Between frames the generator
    already takes the next frame's first rows while it emits the last windows of the
    current one, so the frame interval (what a throughput estimate needs) is the row term
    alone, at least the frame's input beats. Simulated alone, FINN's own RTL runs at
    0.91-1.05 of this and at 0.50-0.99 of FINN's value (``benchmarks/sim_layers.py``).
    """
    if inst.select_impl_style() != "default":
        return None
    ifm_h, ifm_w = inst.get_nodeattr("IFMDim")
    ofm_h, ofm_w = inst.get_nodeattr("OFMDim")
    if 1 in (ifm_h, ifm_w):
        return None
    k_h, k_w = inst.get_nodeattr("ConvKernelDim")
    stride_w = inst.get_nodeattr("Stride")[1]
    folds = inst.get_nodeattr("IFMChannels") // inst.get_nodeattr("SIMD")
    row = max(ofm_w * k_w * k_h * folds, stride_w * ifm_w * folds)
    if inst.get_nodeattr("depthwise"):
        row += ofm_w * (stride_w - 1) * (folds - 1)
    return max(ofm_h * row, ifm_h * ifm_w * folds)


def windows_by_dilation(model: ModelWrapper, estimates: dict) -> list[dict]:
    """Per dilation rate: the sliding windows (k x k > 1) and their estimated LUT and
    BRAM18 (``estimates``: a build's ``report/estimates.json``), whose line buffers grow
    with the rate: the cost of a segmentation net's parallel atrous branches."""
    est = {r["name"]: r for r in estimates["layers"]}
    rates: dict[int, dict] = {}
    for node in model.graph.node:
        if base_op(node.op_type) != "ConvolutionInputGenerator":
            continue
        inst = getCustomOp(node)
        if tuple(inst.get_nodeattr("ConvKernelDim")) == (1, 1):
            continue
        rate = int(inst.get_nodeattr("Dilation")[0])
        r = rates.setdefault(rate, {"rate": rate, "windows": 0, "lut": 0, "bram18": 0})
        r["windows"] += 1
        r["lut"] += est[node.name]["lut"]
        r["bram18"] += est[node.name]["bram18"]
    return [rates[k] for k in sorted(rates)]


def threshold_count(model: ModelWrapper) -> int:
    """Threshold values stored in the accelerator (MVAU and Thresholding layers)."""
    total = 0
    for node in model.graph.node:
        if node.op_type.startswith("MVAU") and len(node.input) > 2:
            total += model.get_initializer(node.input[2]).size
        elif node.op_type.startswith("Thresholding"):
            total += model.get_initializer(node.input[1]).size
    return int(total)


def window_frame_cycles(inst) -> int:
    """Cycles per frame in steady state of this project's sliding-window generator
    (``hw/rtl/sliding_window.v``, frames back to back): max(input beats, output beats),
    exactly (``tests/hw/test_rtl_window.py``). FINN's generator takes up to its fill more
    (``swg_frame_cycles``); the estimates keep FINN's figure, so a design whose slowest
    layer is a window runs up to that much faster than estimated."""
    (h, w), (oh, ow) = inst.get_nodeattr("IFMDim"), inst.get_nodeattr("OFMDim")
    (kh, kw) = inst.get_nodeattr("ConvKernelDim")
    from .rtl.layers import parallel_window
    folds = inst.get_nodeattr("IFMChannels") // inst.get_nodeattr("SIMD")
    return max(h * w * folds, oh * ow * (1 if parallel_window(inst) else kh * kw * folds))


def layer_estimates(model: ModelWrapper, board: Board) -> list[dict]:
    roles = label_layers(model)
    rows = []
    for node in model.graph.node:
        if not node.domain.startswith("finn.custom_op.fpgadataflow"):
            continue
        inst = getCustomOp(node)
        cycles = int(inst.get_exp_cycles())
        res = _own_estimate(node, inst)
        estimator = "groupnet" if res is not None else "finn"
        if res is None:
            try:
                res = inst.node_res_estimation(board.finn_part)
            except Exception as err:  # noqa: BLE001 - FINN's estimators raise anything
                # never count a layer as free: the budget search would call it fitting
                raise EstimateError(
                    f"node {node.name} ({node.op_type}): FINN's resource estimate failed "
                    f"({type(err).__name__}: {err}); no estimate, no folding search for "
                    "this model: report it with the .onnx file") from err
        role = roles[node.name]
        row = {"name": node.name, "op_type": node.op_type, "role": role.role,
               "group": role.group, "branch": role.branch, "cycles": cycles,
               "lut": int(res.get("LUT", 0)), "bram18": int(res.get("BRAM_18K", 0)),
               "uram": int(res.get("URAM", 0)), "dsp": int(res.get("DSP", 0)),
               "estimator": estimator}
        for attr in ("PE", "SIMD"):
            try:
                row[attr.lower()] = int(inst.get_nodeattr(attr))
            except AttributeError:
                pass
        rows.append(row)
    return rows


class EstimateError(UserError, RuntimeError):
    """A layer has no resource estimate."""


def critical_path_cycles(model: ModelWrapper, cycles: dict[str, int]) -> int:
    """Sum of cycles along the slowest input->output path (FINN's pessimistic latency)."""
    at_output: dict[str, int] = {}
    for node in model.graph.node:
        preds = model.find_direct_predecessors(node) or []
        before = max((at_output.get(p.name, 0) for p in preds), default=0)
        at_output[node.name] = before + cycles.get(node.name, 0)
    return max(at_output.values(), default=0)


def summarize(model: ModelWrapper, board: Board, clock_mhz: float) -> dict:
    layers = layer_estimates(model, board)
    if not layers:
        raise ValueError("no dataflow layers to estimate")
    slowest = max(layers, key=lambda r: r["cycles"])
    max_cycles = max(1, slowest["cycles"])
    latency = critical_path_cycles(model, {r["name"]: r["cycles"] for r in layers})
    totals = {k: sum(r[k] for r in layers) for k in ("lut", "bram18", "uram", "dsp")}
    return {
        "kind": "estimate (FINN analytical models + groupnet models for layers FINN "
                "reports as 0); not synthesized",
        "board": board.name, "part": board.part, "clock_mhz": clock_mhz,
        "max_cycles": max_cycles, "bottleneck": slowest["name"],
        "fps": clock_mhz * 1e6 / max_cycles,
        "latency_cycles": latency, "latency_us": latency / clock_mhz,
        **totals,
        "utilization": {"lut": totals["lut"] / board.lut_budget,
                        "bram18": totals["bram18"] / board.bram18,
                        "dsp": totals["dsp"] / board.dsp if board.dsp else 0.0},
        "layers": layers,
    }


def quick_estimate(model: ModelWrapper, board: Board) -> dict:
    """Totals only, for the folding search."""
    layers = layer_estimates(model, board)
    return {"lut": sum(r["lut"] for r in layers), "bram18": sum(r["bram18"] for r in layers),
            "dsp": sum(r["dsp"] for r in layers),
            "max_cycles": max((r["cycles"] for r in layers), default=1)}
