"""Folding: how many PEs/SIMD lanes each layer gets.

Three ways to fold a specialized dataflow graph, all ending in node attributes:

- ``target_fps``: FINN's ``SetFolding`` for the cycles-per-frame that meets the target at
  the board clock (least resources that meet it);
- ``budget``: the fastest folding whose estimated LUT, BRAM and DSP stay within a
  fraction of the board (a search over SetFolding's target);
- a folding JSON (FINN's format: ``{"<node name>": {"PE": 4, "SIMD": 16}, ...}``), checked
  layer by layer: a bad value fails with one line naming the layer and the allowed values.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from groupnet.errors import UserError

from .boards import Board
from .topology import base_op, label_layers


class FoldingError(UserError, ValueError):
    pass


# op -> {folding attribute: (attribute it must divide, human name)}
FOLD_RULES: dict[str, dict[str, tuple[str, str]]] = {
    "MVAU": {"PE": ("MH", "output channels"), "SIMD": ("MW", "input width")},
    "Thresholding": {"PE": ("NumChannels", "channels")},
    "ConvolutionInputGenerator": {"SIMD": ("IFMChannels", "input channels")},
    "FMPadding": {"SIMD": ("NumChannels", "channels")},
    "DuplicateStreams": {"PE": ("NumChannels", "channels")},
    "Pool": {"PE": ("Channels", "channels")},
    "LabelSelect": {"PE": ("Labels", "labels")},
    "StreamingDataWidthConverter": {},
    "StreamingFIFO": {},
}
ELEMENTWISE = "Elementwise"
FOLD_ATTRS = ("PE", "SIMD", "parallel_window", "ram_style", "resType", "mem_mode",
              "runtime_writeable_weights", "depth")


def _channels(model: ModelWrapper, node, attr: str) -> int:
    if base_op(node.op_type).startswith(ELEMENTWISE):
        return int(model.get_tensor_shape(node.output[0])[-1])
    value = getCustomOp(node).get_nodeattr(attr)
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def _rules(node) -> dict[str, tuple[str, str]]:
    op = base_op(node.op_type)
    if op.startswith(ELEMENTWISE):
        return {"PE": ("", "channels")}
    return FOLD_RULES.get(op, {})


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _where(model: ModelWrapper, node) -> str:
    role = label_layers(model)[node.name]
    if role.role == "branch":
        return f"{node.name} (group {role.group}, branch {role.branch})"
    return node.name


# FINN's HLS MVAU needs SIMD >= MW / 1024 (matrixvectoractivation_hls.py asserts it at
# code generation); FINN's SetFolding does not look at it, so a folding of a wide layer
# (MW = 9 x 256 = 2304 in CNV's full-width layers) at SIMD 1 or 2 fails at hw_codegen
HLS_MVAU_MAX_FOLD = 1024


def _hls_min_simd(mw: int) -> int:
    """The smallest SIMD that divides ``mw`` and meets FINN's HLS MVAU bound."""
    return min(d for d in divisors(mw) if d * HLS_MVAU_MAX_FOLD >= mw)


def meet_hls_limits(model: ModelWrapper) -> ModelWrapper:
    """Raise the SIMD of every HLS MVAU below FINN's bound to the smallest that meets it."""
    for node in model.graph.node:
        if node.op_type == "MVAU_hls":
            inst = getCustomOp(node)
            mw, simd = int(inst.get_nodeattr("MW")), int(inst.get_nodeattr("SIMD"))
            if simd * HLS_MVAU_MAX_FOLD < mw:
                inst.set_nodeattr("SIMD", _hls_min_simd(mw))
    return model


def validate_folding(model: ModelWrapper, source: str = "folding") -> None:
    """Check every folding attribute against the layer's shape (and the SWG/Pool coupling,
    and FINN's HLS MVAU bound on SIMD)."""
    for node in model.graph.node:
        inst = getCustomOp(node) if node.domain.startswith("finn") else None
        if inst is None:
            continue
        if node.op_type == "MVAU_hls":
            mw, simd = int(inst.get_nodeattr("MW")), int(inst.get_nodeattr("SIMD"))
            if simd * HLS_MVAU_MAX_FOLD < mw:
                raise FoldingError(
                    f"{source}: layer {_where(model, node)}: SIMD={simd} is below its input "
                    f"width / {HLS_MVAU_MAX_FOLD} ({mw}/{HLS_MVAU_MAX_FOLD}), which FINN's "
                    f"HLS MVAU needs; use SIMD >= {_hls_min_simd(mw)} (a divisor of {mw})")
        for attr, (of, what) in _rules(node).items():
            value = int(inst.get_nodeattr(attr))
            total = _channels(model, node, of)
            if value < 1 or total % value:
                raise FoldingError(
                    f"{source}: layer {_where(model, node)}: {attr}={value} does not divide "
                    f"its {what} ({total}); allowed {attr}: "
                    f"{', '.join(map(str, divisors(total)))}")
        if base_op(node.op_type) == "Pool":
            swg = model.find_producer(node.input[0])
            if swg is not None and base_op(swg.op_type) == "ConvolutionInputGenerator":
                simd = getCustomOp(swg).get_nodeattr("SIMD")
                pe = inst.get_nodeattr("PE")
                if simd != pe:
                    raise FoldingError(
                        f"{source}: layer {node.name}: PE={pe} must equal the SIMD of its "
                        f"window generator {swg.name} (SIMD={simd}); set both to the same value")


# folding attributes that are counts: positive integers (parallel_window is FINN's 0/1 flag)
COUNT_ATTRS = ("PE", "SIMD", "depth")


def check_folding_file(path: str | os.PathLike) -> dict:
    """The checks a folding file gets before the build's first step: readable JSON, one
    object per layer, counts positive integers. Layer names, attributes and divisibility
    need the HW graph: ``apply_folding_file`` checks them at the folding step."""
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise FoldingError(f"{path}: folding file not found") from None
    except (OSError, ValueError) as err:
        raise FoldingError(f"{path}: not a JSON folding file ({err})") from None
    if not isinstance(config, dict):
        raise FoldingError(f"{path}: a folding file is a JSON object of layers (FINN's "
                           "format: {\"MVAU_hls_0\": {\"PE\": 2, \"SIMD\": 4}, ...})")
    for name, attrs in config.items():
        if not isinstance(attrs, dict):
            raise FoldingError(f"{path}: '{name}' is not an object of attributes")
        for attr in COUNT_ATTRS:
            value = attrs.get(attr)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise FoldingError(f"{path}: {name}.{attr} = {value!r}: a positive integer")
        if attrs.get("parallel_window", 0) not in (0, 1):
            raise FoldingError(f"{path}: {name}.parallel_window = "
                               f"{attrs['parallel_window']!r}: 0 or 1")
    return config


def apply_folding_file(model: ModelWrapper, path: str | os.PathLike) -> ModelWrapper:
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise FoldingError(f"{path}: folding file not found") from None
    except json.JSONDecodeError as err:
        raise FoldingError(f"{path}: not valid JSON ({err})") from None
    names = {n.name for n in model.graph.node}
    for name, attrs in config.items():
        if name == "Defaults":
            continue
        target = name if name in names else finn_alias(model, name)
        if target is None:
            raise FoldingError(f"{path}: no layer named '{name}' in this build; "
                               f"layers: {', '.join(sorted(names))}")
        node = model.get_node_from_name(target)
        inst = getCustomOp(node)
        for attr, value in attrs.items():
            try:
                inst.get_nodeattr(attr)
            except AttributeError:
                if target != name and attr in IMPLEMENTATION_ATTRS:
                    # the other implementation's memory style: not this layer's (logged)
                    warnings.warn(f"{path}: {name} -> {target} ({node.op_type}): "
                                  f"'{attr}' does not apply to it, ignored")
                    continue
                raise FoldingError(f"{path}: layer {target} ({node.op_type}) has no attribute "
                                   f"'{attr}'") from None
            inst.set_nodeattr(attr, value)
    validate_folding(model, str(path))
    return model


# attributes of one implementation only (HLS vs RTL): skipped, logged, on an alias
IMPLEMENTATION_ATTRS = ("ram_style", "resType", "mem_mode", "runtime_writeable_weights",
                        "depth_trigger_uram", "depth_trigger_bram")

# FINN's earlier layer names (finn-examples' folding files use them) -> base op
_LEGACY = {"MatrixVectorActivation": "MVAU", "StreamingFCLayer_Batch": "MVAU",
           "Thresholding_Batch": "Thresholding", "LabelSelect_Batch": "LabelSelect",
           "FMPadding_Batch": "FMPadding", "DuplicateStreams_Batch": "DuplicateStreams",
           "ConvolutionInputGenerator": "ConvolutionInputGenerator"}


def finn_alias(model: ModelWrapper, name: str) -> str | None:
    """The layer a FINN folding-file name means when it is not this build's name: the
    other implementation of the same layer (``MVAU_hls_3`` <-> ``MVAU_rtl_3``, FINN names
    layers after the implementation SpecializeLayers picked) or FINN's earlier names
    (``MatrixVectorActivation_3``, ``Thresholding_Batch_0``): the i-th layer of that kind
    in graph order. None if there is no such layer."""
    import re
    m = re.fullmatch(r"(\w+?)(?:_(?:hls|rtl))?_(\d+)", name)
    if m is None:
        return None
    kind, index = _LEGACY.get(m.group(1), m.group(1)), int(m.group(2))
    same = [n.name for n in model.graph.node if base_op(n.op_type) == kind]
    return same[index] if index < len(same) else None


def folding_config(model: ModelWrapper) -> dict:
    """The folding of a graph in FINN's JSON format (what ``--folding`` reads back)."""
    out: dict = {}
    for node in model.graph.node:
        if not node.domain.startswith("finn"):
            continue
        inst = getCustomOp(node)
        attrs = {}
        for attr in FOLD_ATTRS:
            try:
                attrs[attr] = inst.get_nodeattr(attr)
            except AttributeError:
                continue
        out[node.name] = {k: (v.decode() if isinstance(v, bytes) else v)
                          for k, v in attrs.items()}
    return out


def fold_for_cycles(model: ModelWrapper, target_cycles: int) -> ModelWrapper:
    from finn.transformation.fpgadataflow.set_folding import SetFolding
    return meet_hls_limits(model.transform(SetFolding(
        target_cycles_per_frame=max(1, int(target_cycles)), two_pass_relaxation=True)))


def fold_for_fps(model: ModelWrapper, fps: float, clock_mhz: float) -> ModelWrapper:
    if fps <= 0:
        raise FoldingError(f"--target-fps must be positive, got {fps}")
    return fold_for_cycles(model, math.floor(clock_mhz * 1e6 / fps))


def fold_for_budget(model: ModelWrapper, board: Board, budget: float,
                    estimate_fn) -> tuple[ModelWrapper, dict]:
    """Fastest folding whose estimate fits ``budget`` x the board's LUT/BRAM/DSP.

    ``estimate_fn(model) -> {"lut", "bram18", "dsp", "max_cycles"}``. Searches
    SetFolding's target cycles per frame on a log scale.
    """
    if not 0 < budget <= 1:
        raise FoldingError(f"--budget is a fraction of the board (0..1], got {budget}")
    limits = {"lut": budget * board.lut_budget, "bram18": budget * board.bram18,
              "dsp": budget * board.dsp}

    def fits(est: dict) -> bool:
        return all(est[k] <= v for k, v in limits.items())

    slowest = fold_for_cycles(model, 1 << 40)     # PE = SIMD = 1 where FINN allows it
    est = estimate_fn(slowest)
    if not fits(est):
        raise FoldingError(
            f"even the smallest folding needs {est['lut']:.0f} LUT / {est['bram18']:.0f} "
            f"BRAM18 / {est['dsp']:.0f} DSP, over {budget:.0%} of {board.name} "
            f"({limits['lut']:.0f} / {limits['bram18']:.0f} / {limits['dsp']:.0f}); "
            "use a larger board, a larger --budget or a smaller model")
    best, best_est = slowest, est
    lo, hi = 0.0, math.log2(max(2, est["max_cycles"]))   # log2 of target cycles
    for _ in range(14):
        mid = (lo + hi) / 2
        trial = fold_for_cycles(model, 2 ** mid)
        t_est = estimate_fn(trial)
        if fits(t_est):
            if t_est["max_cycles"] <= best_est["max_cycles"]:
                best, best_est = trial, t_est
            hi = mid
        else:
            lo = mid
        if hi - lo < 0.05:
            break
    return best, best_est
