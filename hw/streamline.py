"""Streamlining for Group-Net graphs: FINN's Streamline made fork-safe and faster.

A final TopK is taken off while streamlining and put back after (``detach_topk``,
``attach_topk``); FINN's Streamline runs with its cosmetic renaming skipped and its
bookkeeping passes skipped where the previous pass changed nothing
(``fast_streamline``); Group-Net's passes (``transforms.py``) move the shared scales
past forks and joins (``streamline``); afterwards no float arithmetic may be left
(``check_integer``).
"""

from __future__ import annotations

import contextlib

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.general import RemoveUnusedTensors
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from . import transforms as gt
from .transforms import GraphError

SKIP_UNCHANGED_BOOKKEEPING = True     # tests turn it off to compare with FINN's own


class _NoOp:
    """Stands in for a transformation (see ``fast_streamline``)."""

    def apply(self, model):
        return model, False


class _SkipIfUnchanged:
    """Runs ``inner`` unless the model is exactly what ``inner`` returned last time.

    FINN's Streamline follows each of its ~22 passes with the same bookkeeping passes
    (RemoveIdentityOps, GiveUniqueNodeNames, InferDataTypes, InferDataLayouts), also
    after the many passes that changed nothing. Each bookkeeping pass is idempotent, so
    on a model it has just produced it changes nothing: skipping it then gives the same
    graph (tests/hw/test_fast_qonnx.py builds with and without and compares)."""

    def __init__(self, cls):
        self.cls = cls
        self.last: bytes | None = None

    def __call__(self, *args, **kwargs):       # used where FINN instantiates the class
        return _Instance(self, self.cls(*args, **kwargs))


class _Instance:
    def __init__(self, owner: _SkipIfUnchanged, inner):
        self.owner, self.inner = owner, inner

    def apply(self, model):
        import hashlib
        key = hashlib.sha1(model.model.SerializeToString()).digest()
        if key == self.owner.last:
            return model, False
        model, changed = self.inner.apply(model)
        if not changed:
            self.owner.last = hashlib.sha1(model.model.SerializeToString()).digest()
        return model, changed


@contextlib.contextmanager
def fast_streamline():
    """FINN's Streamline renames every tensor after each of its ~25 passes
    (GiveReadableTensorNames): a third of its run time on a K=4 CNV, and the names are
    cosmetic. Skip that inside Streamline (the step names tensors once at the end), and
    skip its bookkeeping passes where the preceding pass changed nothing."""
    import finn.transformation.streamline as fs
    names = ("GiveReadableTensorNames", "RemoveIdentityOps", "GiveUniqueNodeNames",
             "InferDataTypes", "InferDataLayouts")
    saved = {n: getattr(fs, n) for n in names}
    fs.GiveReadableTensorNames = _NoOp
    for n in names[1:] if SKIP_UNCHANGED_BOOKKEEPING else ():
        setattr(fs, n, _SkipIfUnchanged(saved[n]))
    try:
        yield
    finally:
        for n, v in saved.items():
            setattr(fs, n, v)


def detach_topk(model: ModelWrapper):
    out = model.graph.output[0]
    node = model.find_producer(out.name)
    if node is None or node.op_type != "TopK":
        return None
    from onnx import helper
    k = model.get_initializer(node.input[1])
    scores = node.input[0]
    for vi in [v for v in model.graph.value_info if v.name == scores]:
        model.graph.value_info.remove(vi)
    model.graph.node.remove(node)
    model.graph.output.remove(out)
    model.graph.output.append(helper.make_tensor_value_info(
        scores, 1, model.get_tensor_shape(scores)))
    return node, out, k


def attach_topk(model: ModelWrapper, detached) -> ModelWrapper:
    node, out, k = detached
    node.input[0] = model.graph.output[0].name
    model.set_initializer(node.input[1], k)
    model.graph.output.remove(model.graph.output[0])
    model.graph.output.append(out)
    model.graph.node.append(node)
    return model.transform(InferShapes()).transform(InferDataTypes())


def streamline(model: ModelWrapper) -> ModelWrapper:
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
    from finn.transformation.streamline.reorder import (MakeMaxPoolNHWC, MoveLinearPastFork,
                                                        MoveMulPastJoinAdd,
                                                        MoveTransposePastJoinAdd)
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    model = model.transform(Streamline())
    # residual groups: the shared scale sits on forks (shortcut -> sign and add) and on
    # every operand of the add; duplicate it past forks, then move it past the adds,
    # where it is absorbed into the next threshold (skipped when no Mul is left: each
    # Streamline() costs ~10 s on a K=4 CNV)
    for _ in range(8):
        if not model.get_nodes_by_op_type("Mul"):
            break
        before = len(model.graph.node)
        for t in (MoveLinearPastFork(), MoveMulPastJoinAdd(), Streamline()):
            model = model.transform(t)
        if len(model.graph.node) == before:
            break
    model = model.transform(gt.AbsorbBipolarPadIntoConv())
    model = model.transform(LowerConvsToMatMul())
    model = model.transform(gt.MergeIdenticalSiblings())
    for _ in range(4):      # layout ops move one level per round, until nothing moves
        before = signature(model)
        for t in (MoveTransposePastJoinAdd(), MakeMaxPoolNHWC(),
                  gt.MoveTransposePastThresholdFork(),
                  absorb.AbsorbTransposeIntoMultiThreshold(),
                  absorb.AbsorbConsecutiveTransposes(), gt.MergeIdenticalSiblings()):
            model = model.transform(t)
        if signature(model) == before:
            break
    model = model.transform(gt.AbsorbTransposeIntoFlatten())
    model = model.transform(gt.ForkSafeBipolarToXnorPopcount())
    model = model.transform(Streamline())
    # ABC-Net layers: the M x N popcounts' corrections past their sum, then (like the
    # residual groups above) past the fork into the N shifted thresholds
    moved = len(model.graph.node)
    if model.get_nodes_by_op_type("Mul"):
        model = model.transform(gt.MoveAffinePastJoinAdd())   # (each move: 5 nodes -> 3)
    if len(model.graph.node) != moved:
        for _ in range(4):
            before = len(model.graph.node)
            for t in (MoveLinearPastFork(), Streamline()):
                model = model.transform(t)
            if not model.get_nodes_by_op_type("Mul") or len(model.graph.node) == before:
                break
    model = model.transform(RoundAndClipThresholds())   # integer inputs: x >= t <=> x >= ceil(t)
    model = model.transform(gt.StripOutputAffine("groupnet.score"))
    model = model.transform(InferDataLayouts())
    model = model.transform(RemoveUnusedTensors())
    check_integer(model)
    return model


def signature(model: ModelWrapper) -> list:
    return [(n.op_type, tuple(n.input), tuple(n.output)) for n in model.graph.node]


def check_integer(model: ModelWrapper) -> None:
    """After streamlining, no float arithmetic may be left (it would stay FLOAT32 in the
    fabric): name the first such node and what to change in the model."""
    from qonnx.core.datatype import DataType
    for node in model.graph.node:
        if node.op_type in ("Mul", "Add", "Sub", "Div"):
            consts = [model.get_initializer(i) for i in node.input]
            if any(c is not None and not float(abs(c - c.round()).max()) == 0.0
                   for c in consts):
                raise GraphError(
                    f"node {node.name} ({node.op_type}): float constant left after "
                    "streamlining; branch outputs must share ONE quantizer (one scale) and "
                    "per-branch scales must be integer multiples of it")
        for out in node.output:
            if model.get_tensor_datatype(out) == DataType["FLOAT32"] and \
                    node.op_type not in ("Transpose", "Reshape") and \
                    out != model.graph.output[0].name:
                raise GraphError(
                    f"node {node.name} ({node.op_type}): output {out} is FLOAT32 after "
                    "streamlining; every tensor between the input and the classifier must "
                    "be quantized (binary sign or a shared integer quantizer)")
