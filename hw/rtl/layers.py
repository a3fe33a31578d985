"""One FINN HW node -> one module of this project's RTL: module name, Verilog parameters,
stream widths, and the memory files (weights, thresholds) the module reads.

Shared by the Verilator stitcher (``hw/sim/stitch.py``) and the FINN RTL layer variants
(``hw/finn_rtl.py``), so that a Vivado build instantiates exactly the modules, parameters
and memory contents that the simulation checked. The folding (PE, SIMD), stream order
and packing are the FINN node's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from .mvau import MVAUConfig, write_memories

RTL_DIR = Path(__file__).resolve().parent


class UnsupportedLayer(ValueError):
    """A node that this project's RTL does not implement (the message names it)."""


@dataclass
class LayerRTL:
    module: str                 # Verilog module (hw/rtl/<module>.v)
    params: dict                # its parameters; memory files by the reference given
    in_widths: list[int]        # bits per beat of each input stream
    out_width: int              # bits per beat of (each) output stream

    @property
    def source(self) -> Path:
        return RTL_DIR / f"{self.module}.v"


_Written = tuple[dict, list[int], int]      # parameters, input widths, output width


def _hex(value: int, bits: int) -> str:
    return f"{value & ((1 << bits) - 1):0{max(1, (bits + 3) // 4)}x}"


def _dt(name) -> DataType:
    return DataType[name.decode() if isinstance(name, bytes) else name]


def _range(dt: DataType) -> tuple[int, int]:
    return int(dt.min()), int(dt.max())


def _weight_bits(inst, weights: np.ndarray) -> int:
    """1 for binary / bipolar weights, else the signed weight type's width (INT2 -> 2)."""
    if inst.get_nodeattr("binaryXnorMode") or np.isin(weights, (-1, 1)).all():
        return 1
    return inst.get_input_datatype(1).bitwidth()


def _mvau(model, node, inst, mem_dir: Path, mem_ref: str) -> _Written:
    thresholds = None
    if inst.get_nodeattr("noActivation") == 0:
        thresholds = model.get_initializer(node.input[2])
    idt, odt = inst.get_input_datatype(0), inst.get_output_datatype()
    weights = model.get_initializer(node.input[1])
    cfg = MVAUConfig(weights, thresholds, inst.get_nodeattr("PE"),
                     inst.get_nodeattr("SIMD"), idt.bitwidth(), idt.signed(),
                     bool(inst.get_nodeattr("binaryXnorMode")), odt.bitwidth(),
                     int(inst.get_nodeattr("ActVal")), _weight_bits(inst, weights))
    params = write_memories(cfg, mem_dir)
    params["WEIGHT_FILE"] = f"{mem_ref}weights.hex"
    params["THRES_FILE"] = f"{mem_ref}thresholds.hex"
    try:                                         # FINN's memory style for the weights
        style = inst.get_nodeattr("ram_style")
    except AttributeError:
        style = "auto"
    params["RAM_STYLE"] = style.decode() if isinstance(style, bytes) else style
    return params, [cfg.simd * cfg.in_bits], cfg.pe * cfg.out_bits


def _thresholding(model, node, inst, mem_dir: Path, mem_ref: str) -> _Written:
    idt, odt = inst.get_input_datatype(0), inst.get_output_datatype()
    c, pe = inst.get_nodeattr("NumChannels"), inst.get_nodeattr("PE")
    t = model.get_initializer(node.input[1])
    t = np.broadcast_to(t, (c, t.shape[1]))
    lo, hi = _range(idt)
    tb = idt.bitwidth() + 1
    t = np.clip(np.ceil(t), lo, hi + 1).astype(np.int64)
    n_thres = t.shape[1]
    lines = []
    for nf in range(c // pe):
        word = 0
        for p in range(pe):
            for j in range(n_thres):
                word |= (int(t[nf * pe + p, j]) & ((1 << tb) - 1)) << ((p * n_thres + j) * tb)
        lines.append(_hex(word, pe * n_thres * tb))
    mem_dir.mkdir(parents=True, exist_ok=True)
    (mem_dir / "thresholds.hex").write_text("\n".join(lines) + "\n")
    params = {"C": c, "PE": pe, "IN_BITS": idt.bitwidth(), "IN_SIGNED": int(idt.signed()),
              "N_THRES": n_thres, "OUT_BITS": odt.bitwidth(),
              "ACT_VAL": int(inst.get_nodeattr("ActVal")),
              "THRES_FILE": f"{mem_ref}thresholds.hex"}
    return params, [pe * idt.bitwidth()], pe * odt.bitwidth()


def _pool(model, node, inst, mem_dir: Path, mem_ref: str) -> _Written:
    idt = inst.get_input_datatype()
    pe, k = inst.get_nodeattr("PE"), inst.get_nodeattr("KernelSize")
    params = {"PE": pe, "BITS": idt.bitwidth(), "SIGNED": int(idt.signed()),
              "K2": int(np.prod(k))}
    return params, [pe * idt.bitwidth()], pe * idt.bitwidth()


def _add(model, node, inst, mem_dir: Path, mem_ref: str) -> _Written:
    lhs, rhs = _dt(inst.get_nodeattr("lhs_dtype")), _dt(inst.get_nodeattr("rhs_dtype"))
    out = _dt(inst.get_nodeattr("out_dtype"))
    pe = inst.get_nodeattr("PE")
    params = {"PE": pe, "A_BITS": lhs.bitwidth(), "B_BITS": rhs.bitwidth(),
              "A_SIGNED": int(lhs.signed()), "B_SIGNED": int(rhs.signed()),
              "OUT_BITS": out.bitwidth()}
    return params, [pe * lhs.bitwidth(), pe * rhs.bitwidth()], pe * out.bitwidth()


def _dup(model, node, inst, mem_dir: Path, mem_ref: str) -> _Written:
    width = inst.get_instream_width()
    return {"WIDTH": width, "N": inst.get_nodeattr("NumOutputStreams")}, [width], width


def _fmpadding(model, node, inst, mem_dir: Path, mem_ref: str) -> _Written:
    h, w = inst.get_nodeattr("ImgDim")
    pt, pl, pb, pr = inst.get_nodeattr("Padding")    # FINN: [H begin, W begin, H end, W end]
    idt = inst.get_input_datatype()
    simd = inst.get_nodeattr("SIMD")
    params = {"H": h, "W": w, "C": inst.get_nodeattr("NumChannels"), "SIMD": simd,
              "BITS": idt.bitwidth(), "PT": pt, "PB": pb, "PL": pl, "PR": pr}
    return params, [simd * idt.bitwidth()], simd * idt.bitwidth()


def _label_select(model, node, inst, mem_dir: Path, mem_ref: str) -> _Written:
    idt, odt = inst.get_input_datatype(), inst.get_output_datatype()
    pe = inst.get_nodeattr("PE")
    params = {"N": inst.get_nodeattr("Labels"), "PE": pe, "BITS": idt.bitwidth(),
              "SIGNED": int(idt.signed()), "K": inst.get_nodeattr("K"),
              "OUT_BITS": odt.bitwidth()}
    return params, [pe * idt.bitwidth()], odt.bitwidth()


def _swg(model, node, inst, mem_dir: Path, mem_ref: str) -> _Written:
    (h, w), (kh, kw) = inst.get_nodeattr("IFMDim"), inst.get_nodeattr("ConvKernelDim")
    (sh, sw), (dh, dw) = inst.get_nodeattr("Stride"), inst.get_nodeattr("Dilation")
    simd, bits = inst.get_nodeattr("SIMD"), inst.get_input_datatype().bitwidth()
    params = {"H": h, "W": w, "C": inst.get_nodeattr("IFMChannels"), "SIMD": simd,
              "BITS": bits, "KH": kh, "KW": kw, "SH": sh, "SW": sw, "DH": dh, "DW": dw,
              "DEPTHWISE": int(inst.get_nodeattr("depthwise")),
              "PARALLEL": int(parallel_window(inst))}
    return params, [simd * bits], inst.get_outstream_width()


def parallel_window(inst) -> bool:
    """FINN's parallel_window flag (a whole window a beat); False where the node has none."""
    try:
        return bool(inst.get_nodeattr("parallel_window"))
    except AttributeError:                        # FINN's HLS generator: no such mode
        return False


# FINN base op -> (module in hw/rtl/<module>.v, writer of its parameters and memory files)
LAYERS = {"MVAU": ("mvau_stream", _mvau), "Thresholding": ("thresholding_stream", _thresholding),
          "Pool": ("pool_max", _pool), "ElementwiseAdd": ("elementwise_add", _add),
          "DuplicateStreams": ("duplicate_streams", _dup),
          "FMPadding": ("fmpadding_stream", _fmpadding),
          "LabelSelect": ("label_select", _label_select),
          "ConvolutionInputGenerator": ("sliding_window", _swg)}


def _why_not_mvau(model: ModelWrapper, node, inst) -> str | None:
    idt = inst.get_input_datatype(0)
    weights = model.get_initializer(node.input[1])
    if weights is None:
        return "its weights are not a constant (the RTL holds them in a ROM)"
    if inst.get_nodeattr("binaryXnorMode"):
        if idt != DataType["BINARY"] or not np.isin(weights, (0, 1)).all():
            return "XNOR mode needs BINARY inputs and {0,1} weights"
    elif not idt.is_integer() or idt == DataType["BIPOLAR"]:
        return "the RTL multiplies integer inputs only"
    elif not np.isin(weights, (-1, 1)).all():
        wdt = inst.get_input_datatype(1)
        if not (wdt.is_integer() and wdt.signed() and wdt != DataType["BIPOLAR"]) or \
                weights.min() < wdt.min() or weights.max() > wdt.max():
            return (f"the RTL takes +-1 or signed integer weights, not {wdt.name} "
                    f"({weights.min():g}..{weights.max():g})")
    return None


def _why_not_thresholding(model: ModelWrapper, node, inst) -> str | None:
    if not inst.get_input_datatype(0).is_integer() or \
            inst.get_input_datatype(0) == DataType["BIPOLAR"]:
        return "the RTL thresholds integer inputs only"
    if model.get_initializer(node.input[1]) is None:
        return "its thresholds are not a constant (the RTL holds them in a ROM)"
    return None


def _why_not_pool(model: ModelWrapper, node, inst) -> str | None:
    return None if inst.get_nodeattr("Function") == "MaxPool" else "only MaxPool has RTL here"


def _why_not_add(model: ModelWrapper, node, inst) -> str | None:
    if inst.get_nodeattr("lhs_style") != "input" or inst.get_nodeattr("rhs_style") != "input":
        return "only stream + stream adds have RTL here"
    return None


def _why_not_label_select(model: ModelWrapper, node, inst) -> str | None:
    idt = inst.get_input_datatype()
    if not idt.is_integer() or idt == DataType["BIPOLAR"]:
        return "the RTL selects among integer scores only"
    return None


def _why_not_swg(model: ModelWrapper, node, inst) -> str | None:
    if len(inst.get_nodeattr("IFMDim")) != 2 or len(inst.get_nodeattr("ConvKernelDim")) != 2:
        return "the RTL takes [H, W] image and kernel dimensions (1D as H or W = 1)"
    try:
        if inst.get_nodeattr("M") != 1:
            return "the RTL makes one window at a time (M = 1)"
    except AttributeError:
        pass
    (h, w), (kh, kw) = inst.get_nodeattr("IFMDim"), inst.get_nodeattr("ConvKernelDim")
    (sh, sw), (dh, dw) = inst.get_nodeattr("Stride"), inst.get_nodeattr("Dilation")
    out = [(n - (k - 1) * d - 1) // s + 1 for n, k, s, d in ((h, kh, sh, dh), (w, kw, sw, dw))]
    if list(inst.get_nodeattr("OFMDim")) != out:
        return f"OFMDim {inst.get_nodeattr('OFMDim')} is not the unpadded {out}"
    if parallel_window(inst) and inst.get_nodeattr("SIMD") != inst.get_nodeattr("IFMChannels"):
        return "a parallel window needs SIMD = IFMChannels"
    return None


_CHECKS = {"ConvolutionInputGenerator": _why_not_swg, "LabelSelect": _why_not_label_select,
           "MVAU": _why_not_mvau, "Thresholding": _why_not_thresholding,
           "Pool": _why_not_pool, "ElementwiseAdd": _why_not_add}


def why_not(model: ModelWrapper, node, inst, op: str) -> str | None:
    """Why this project's RTL cannot implement ``node`` (base op ``op``); None if it can."""
    if op not in LAYERS:
        return "no RTL for this layer yet"
    check = _CHECKS.get(op)
    return check(model, node, inst) if check else None


def layer_rtl(model: ModelWrapper, node, inst, op: str, mem_dir: Path,
              mem_ref: str) -> LayerRTL:
    """The module for ``node``; memory files are written into ``mem_dir`` and referenced in
    the parameters as ``mem_ref + name`` (relative to where the simulator/synthesis runs).
    Raises :class:`UnsupportedLayer` naming the node when the RTL cannot implement it."""
    reason = why_not(model, node, inst, op)
    if reason is not None:
        raise UnsupportedLayer(f"node {node.name}: {reason}")
    module, write = LAYERS[op]
    return LayerRTL(module, *write(model, node, inst, Path(mem_dir), mem_ref))
