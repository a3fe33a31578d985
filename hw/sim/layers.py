"""Every layer of a build simulated alone: its own cycles per frame beside the estimates.

In the stitched pipeline a layer waits for its neighbours, and its stream signals cannot
tell waiting from working: a double-buffered MVAU is ready for input (so counts as
starved) while it folds the vector it holds, and a sliding-window generator refuses input
(so never counts as starved) while it waits for its next window; an add counts as starved
only on its first input. In ``groupnet_cnv_s_k2``, total - starved - blocked per frame reads
0.01x to 60x FINN's estimate for layers that run at it when alone. So, as FINN's
own per-layer tests do, each layer is stitched and simulated alone: its input always
valid, its output always taken, ``frames`` frames of random data (no layer's timing
depends on values); its cycles per frame are the steady-state distance between the last
output beats of consecutive frames. Same RTL and folding as ``groupnet sim``.

A two-input ElementwiseAdd is fed from one random stream through a DuplicateStreams (both
1 beat per cycle); the extra outputs of a DuplicateStreams are drained (always ready).
``layer_cycles`` takes a :class:`~groupnet.hw.context.Build` (or its folder) and sets up FINN.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from ..estimates import window_frame_cycles
from ..topology import base_op
from .stitch import stitch
from .verilator import SimError, build, run_stream
from .run import idle_limit

if TYPE_CHECKING:
    from ..context import Build


def _value_info(tensor: str, shape) -> object:
    return helper.make_tensor_value_info(tensor, TensorProto.FLOAT, list(shape))


def _fed_add(model: ModelWrapper, node) -> tuple[list, str]:
    """A stream + stream ElementwiseAdd fed from one stream (the isolated top has one
    input) through a DuplicateStreams. Inputs of different widths both get the wider
    type: the add takes one beat of each per cycle whatever their widths, so its timing
    is the same. Returns ([feeder, add], the feeder's input tensor)."""
    inst = getCustomOp(node)
    dtypes = [inst.get_nodeattr("lhs_dtype"), inst.get_nodeattr("rhs_dtype")]
    wide = max(dtypes, key=lambda d: DataType[d].bitwidth())
    add = copy.deepcopy(node)
    for attr in add.attribute:
        if attr.name in ("lhs_dtype", "rhs_dtype"):
            attr.s = wide.encode()
    shape = list(inst.get_nodeattr("lhs_shape"))
    src = f"{node.name}__feed"
    dup = helper.make_node(
        "DuplicateStreams_hls", [src], list(node.input[:2]), name=f"{node.name}_feed",
        domain="finn.custom_op.fpgadataflow.hls", backend="fpgadataflow",
        NumChannels=int(shape[-1]), PE=int(inst.get_nodeattr("PE")), NumOutputStreams=2,
        inputDataType=wide, numInputVectors=shape[:-1])
    return [dup, add], src


def isolated_model(model: ModelWrapper, node) -> ModelWrapper:
    """A graph holding ``node`` alone (with its constant inputs), one input stream."""
    nodes = [node]
    inputs = [t for t in node.input if model.get_initializer(t) is None]
    wide = {}
    if base_op(node.op_type) == "ElementwiseAdd":
        nodes, src = _fed_add(model, node)
        inputs = [src]
        wide = {t: DataType[getCustomOp(nodes[1]).get_nodeattr("lhs_dtype")]
                for t in [src, *node.input[:2]]}
    tensors = list(dict.fromkeys(t for n in nodes for t in [*n.input, *n.output]))
    consts = {t: model.get_initializer(t) for t in tensors}
    shape = {t: model.get_tensor_shape(t) for t in tensors if t not in inputs}
    shape.update({t: model.get_tensor_shape(node.input[0]) for t in inputs})
    dtype = {t: model.get_tensor_datatype(t) for t in tensors}
    dtype.update(wide)
    inner = [t for t in tensors if t not in inputs and t not in node.output
             and consts[t] is None]
    graph = helper.make_graph(nodes, f"{node.name}_alone",
                              [_value_info(t, shape[t]) for t in inputs],
                              [_value_info(t, shape[t]) for t in node.output],
                              value_info=[_value_info(t, shape[t]) for t in inner])
    sub = ModelWrapper(helper.make_model(graph))
    for t in tensors:
        if consts[t] is not None:
            sub.set_initializer(t, consts[t])
        sub.set_tensor_datatype(t, dtype[t])
    return sub


def _random_beats(n: int, width: int, rng: np.random.Generator) -> list[list[int]]:
    words = (width + 31) // 32
    top = width - 32 * (words - 1)
    data = rng.integers(0, 1 << 32, (n, words), dtype=np.uint64)
    data[:, -1] &= (1 << top) - 1
    return data.astype(np.int64).tolist()


def layer_alone(model: ModelWrapper, node, folder: Path, part: str, clk_ns: float,
                frames: int = 4, seed: int = 0) -> dict:
    """Simulate ``node`` alone for ``frames`` frames; its steady-state cycles per frame."""
    sub = isolated_model(model, node)
    design = stitch(sub, folder, part, clk_ns)
    exe = build(design.sources, design.top, {}, defines={"STATS_WORDS": len(design.stats)})
    beats = _random_beats(frames * design.beats_in_per_frame, design.in_width,
                          np.random.default_rng(seed))
    per_frame = design.beats_out_per_frame
    exp = int(getCustomOp(node).get_exp_cycles())     # a fold loop can outlast 100k cycles
    run = run_stream(exe, beats, frames * per_frame, cwd=folder,
                     max_cycles=100 * (frames + 2) * max(exp, 1000),
                     idle_cycles=idle_limit(exp, None))
    if run.stalled or len(run.out_cycles) < frames * per_frame:
        raise SimError(f"node {node.name}: alone, it stopped after {len(run.out_cycles)} of "
                       f"{frames * per_frame} output beats")
    done = np.asarray(run.out_cycles[per_frame - 1::per_frame], dtype=np.int64)
    steady = np.diff(done)[1:] if frames > 2 else np.diff(done)
    return {"cycles_per_frame": float(np.median(steady)), "first_frame_cycles": int(done[0]),
            "verilator_build_s": exe.build_seconds}


def _timing_key(model: ModelWrapper, node) -> tuple:
    """Layers with equal type, attributes and tensor shapes have equal timing (weights
    and thresholds are data): the K branches of a group are simulated once."""
    attrs = tuple(sorted(a.SerializeToString() for a in node.attribute))
    shapes = tuple(tuple(model.get_tensor_shape(t) or ()) for t in [*node.input, *node.output])
    return node.op_type, attrs, shapes


def layer_cycles(build: "Build | str | Path", frames: int = 4, per_kind: int | None = None
                 ) -> list[dict]:
    """Every layer of ``DIR/dataflow.onnx`` alone, beside FINN's estimate of its cycles
    per frame (``DIR/report/estimates.json``) and this project's own where FINN's is off
    (``own_cycles``; ``ratio``: simulated / own, else / FINN; ``finn_ratio``: / FINN);
    ``same_as``: the identical layer whose simulation the row repeats. ``per_kind``: at
    most this many different layers of each kind (one Verilator build each), for tests."""
    from ..context import as_build
    from .run import NEEDS
    build = as_build(build, need=NEEDS, error=SimError)
    with build.finn():
        return _layer_cycles(build, frames, per_kind)


def _layer_cycles(build: "Build", frames: int, per_kind: int | None) -> list[dict]:
    est = {r["name"]: r for r in build.estimates()["layers"]}
    model = build.dataflow()
    done: dict[tuple, tuple[str, dict]] = {}
    rows = []
    simulated: dict[str, int] = {}
    for node in model.graph.node:
        key = _timing_key(model, node)
        kind = base_op(node.op_type)
        if key not in done and per_kind is not None and simulated.get(kind, 0) >= per_kind:
            continue
        if key not in done:
            simulated[kind] = simulated.get(kind, 0) + 1
            done[key] = node.name, layer_alone(model, node,
                                               build.root / "sim_layers" / node.name,
                                               build.part, build.clock_period_ns, frames)
        twin, alone = done[key]
        finn = est[node.name]["cycles"]
        own = _own_cycles(node)
        rows.append({"name": node.name, "op_type": base_op(node.op_type),
                     "pe": est[node.name].get("pe"), "simd": est[node.name].get("simd"),
                     "finn_cycles": finn, "own_cycles": own, **alone,
                     "finn_ratio": round(alone["cycles_per_frame"] / finn, 4),
                     "ratio": round(alone["cycles_per_frame"] / (own or finn), 4),
                     "same_as": twin if twin != node.name else None})
    return rows


def _own_cycles(node) -> int | None:
    """This project's cycle model where FINN's is off (``hw/estimates.py``): the sliding
    window is this project's RTL, exactly max(input beats, output beats) a frame."""
    if base_op(node.op_type) == "ConvolutionInputGenerator":
        return window_frame_cycles(getCustomOp(node))
    return None
