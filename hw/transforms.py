"""Graph passes that Group-Net needs on top of stock FINN/qonnx.

Every pass is a qonnx ``Transformation``: ``apply(model) -> (model, changed)``, and each has
a unit test that executes a small graph before and after it (tests/hw/test_transforms.py).

Why they exist (measured, see README "Hardware flow"):

- a K-branch group reads ONE binary tensor with K convolutions. Lowering each conv puts
  its own NCHW->NHWC ``Transpose`` (and an identical ``Im2Col``) on the shared tensor;
  FINN's layout passes rewire only the first consumer and corrupt the graph.
  :class:`MergeIdenticalSiblings` merges such identical siblings, so the fork moves behind
  one sliding-window generator (one SWG, then DuplicateStreams, then K MVAUs);
- qonnx's ``ConvertBipolarMatMulToXnorPopcount`` re-encodes the producing threshold to
  BINARY for the first consumer and then fails for the other K-1.
  :class:`ForkSafeBipolarToXnorPopcount` converts all consumers of a threshold together,
  and refuses (with the node names) when a consumer cannot take the {0,1} encoding;
- the model's input quantizer (8-bit, scale 1) is the identity on pixels, and the logit
  scale is one positive scalar: :class:`RemoveInputIdentityQuant` and
  :class:`StripOutputAffine` take them out so the accelerator sees UINT8 pixels and
  returns integer class scores (argmax unchanged); both are recorded in the metadata;
- PyTorch pads +-1 tensors with -1 (``PadMinusOne``): in FINN's encoded domain that is 0,
  which is what FINN's padding produces. :class:`AbsorbBipolarPadIntoConv` moves such a
  ``Pad`` into the following convolution's padding.
"""

from __future__ import annotations

import json

import numpy as np
from onnx import TensorProto
from onnx import helper as oh
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import get_by_name

from groupnet.errors import UserError


class GraphError(UserError, ValueError):
    """The graph is not a Group-Net that maps to binary FINN hardware (user error).

    The message names the node, what is wrong and what to change in the model.
    """


def node_label(node) -> str:
    """A node as an error names it: its name and op type, or (unnamed, as exporters leave
    some) the tensor it writes."""
    if node.name:
        return f"{node.name} ({node.op_type})"
    return f"the {node.op_type} writing '{node.output[0]}'" if node.output else node.op_type


def _attrs(node) -> dict:
    return {a.name: oh.get_attribute_value(a) for a in node.attribute}


def _const(model: ModelWrapper, name: str) -> np.ndarray | None:
    return model.get_initializer(name)


# --------------------------------------------------------------------------- QONNX level
class RemoveInputIdentityQuant(Transformation):
    """Remove an unsigned 8-bit, scale-1, zero-point-0 ``Quant`` on the graph input.

    On integer pixels 0..255 it is the identity; the input is annotated UINT8 instead, so
    FINN does not build a 255-threshold layer for it.
    """

    def apply(self, model: ModelWrapper):
        inp = model.graph.input[0].name
        for node in model.find_consumers(inp) or []:
            if node.op_type != "Quant" or len(model.find_consumers(inp)) != 1:
                continue
            scale, zp, bits = (_const(model, n) for n in node.input[1:4])
            if scale is None or zp is None or bits is None:
                continue
            a = _attrs(node)
            if not (np.all(scale == 1.0) and np.all(zp == 0) and int(bits) == 8
                    and a.get("signed", 1) == 0 and a.get("narrow", 0) == 0):
                continue
            for consumer in model.find_consumers(node.output[0]):
                for i, name in enumerate(consumer.input):
                    if name == node.output[0]:
                        consumer.input[i] = inp
            model.graph.node.remove(node)
            model.set_tensor_datatype(inp, DataType["UINT8"])
            return model, True
        return model, False


class StripOutputAffine(Transformation):
    """Remove trailing ``Mul``/``Div``/``Add``/``Sub`` by scalar constants on the graph
    output, or in front of a final ``TopK`` (FINN's classifiers end in one).

    They do not change the argmax (the TopK's order) when every multiplier is positive:
    a final affine such as Brevitas' ``TensorNorm`` (FINN's TFC/CNV tail: Sub, Div, Mul,
    Add) is a positive scale and a shift. The removed ``y = raw * scale + bias`` is
    recorded as metadata ``<key>_scale`` / ``<key>_bias`` (``groupnet.logit``: integer
    scores -> the model's logits; ``groupnet.score``: the accelerator's raw popcounts ->
    integer scores). A non-positive multiplier stays in place.
    """

    OPS = ("Mul", "Div", "Add", "Sub")

    def __init__(self, key: str = "groupnet.output"):
        super().__init__()
        self.key = key

    def apply(self, model: ModelWrapper):
        tail = model.find_producer(model.graph.output[0].name)
        if tail is not None and tail.op_type == "TopK":
            node = model.find_producer(tail.input[0])
            target = tail.input[0]
        else:
            node, target = tail, model.graph.output[0].name
        if node is None or node.op_type not in self.OPS:
            return model, False
        const = _const(model, node.input[1])
        producer = model.find_producer(node.input[0])
        if const is None or const.size != 1 or producer is None or \
                len(model.find_consumers(node.input[0]) or []) != 1:
            return model, False
        value = float(const.reshape(-1)[0])
        if node.op_type in ("Mul", "Div") and value <= 0:
            return model, False
        scale = float(model.get_metadata_prop(f"{self.key}_scale") or 1.0)
        bias = float(model.get_metadata_prop(f"{self.key}_bias") or 0.0)
        # y = z*scale + bias, and z = raw*value (Mul), raw/value, raw + value, raw - value
        if node.op_type == "Mul":
            scale *= value
        elif node.op_type == "Div":
            scale /= value
        else:
            bias += (value if node.op_type == "Add" else -value) * scale
        model.set_metadata_prop(f"{self.key}_scale", repr(scale))
        model.set_metadata_prop(f"{self.key}_bias", repr(bias))
        for i, name in enumerate(producer.output):
            if name == node.input[0]:
                producer.output[i] = target
        model.graph.node.remove(node)
        return model.transform(InferShapes()).transform(InferDataTypes()), True


class AbsorbBipolarPadIntoConv(Transformation):
    """``Pad(value=-1)`` on a bipolar tensor followed by a ``Conv`` -> the Conv's own pads.

    FINN pads binary streams with the encoded value 0, i.e. -1. Between this pass and
    :class:`ForkSafeBipolarToXnorPopcount` the graph pads +-1 data with 0 (not exact on
    its own); once the tensor is re-encoded to {0, 1} the padding means -1 again and the
    graph is exact. The build runs both in one step and checks the result; the conv's
    weights must be bipolar so that the conversion is guaranteed to happen.
    """

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.op_type != "Pad":
                continue
            consumers = model.find_consumers(node.output[0]) or []
            dt = model.get_tensor_datatype(node.input[0])
            value = _const(model, node.input[2]) if len(node.input) > 2 and node.input[2] else None
            if value is None or float(np.asarray(value).reshape(-1)[0]) != -1.0:
                continue
            if dt != DataType["BIPOLAR"]:
                raise GraphError(f"node {node.name}: padding with -1 of a {dt.name} tensor; "
                                 "-1 padding maps to hardware only for bipolar (+-1) tensors")
            if not consumers or any(c.op_type != "Conv" for c in consumers):
                raise GraphError(f"node {node.name}: -1 padding must feed a convolution "
                                 f"(it feeds {[c.op_type for c in consumers]})")
            pads = [int(p) for p in _const(model, node.input[1]).reshape(-1)]
            # ONNX Pad on NCHW: [n0, c0, h0, w0, n1, c1, h1, w1]; Conv pads: [h0, w0, h1, w1]
            if pads[0] or pads[1] or pads[4] or pads[5]:
                raise GraphError(f"node {node.name}: pads batch/channel axes {pads}")
            conv_pads = [pads[2], pads[3], pads[6], pads[7]]
            for conv in consumers:
                if model.get_tensor_datatype(conv.input[1]) != DataType["BIPOLAR"]:
                    raise GraphError(f"node {conv.name}: -1 padded input needs +-1 weights "
                                     "(an XNOR layer); make the conv's weights binary")
                old = get_by_name(conv.attribute, "pads")
                if old is not None and any(old.ints):
                    raise GraphError(f"node {conv.name}: conv has its own padding after a -1 pad")
                if old is not None:
                    conv.attribute.remove(old)
                conv.attribute.append(oh.make_attribute("pads", conv_pads))
                conv.input[0] = node.input[0]
            model.graph.node.remove(node)
            return model.transform(InferShapes()), True
        return model, False


# ------------------------------------------------------------------------ FINN level
class MergeIdenticalSiblings(Transformation):
    """Merge nodes that read the same tensors with the same op and attributes (CSE).

    Only for side-effect-free layout ops (default: Transpose, Im2Col, Reshape): a fork's
    K identical lowerings become one, and the fork moves behind it.
    """

    def __init__(self, op_types: tuple[str, ...] = ("Transpose", "Im2Col", "Reshape")):
        super().__init__()
        self.op_types = op_types

    def apply(self, model: ModelWrapper):
        seen: dict[tuple, str] = {}
        for node in list(model.graph.node):
            if node.op_type not in self.op_types or len(node.output) != 1:
                continue
            key = (node.op_type, node.domain, tuple(node.input),
                   json.dumps(_attrs(node), sort_keys=True, default=str))
            if key not in seen:
                seen[key] = node.output[0]
                continue
            keep = seen[key]
            for consumer in model.find_consumers(node.output[0]) or []:
                for i, name in enumerate(consumer.input):
                    if name == node.output[0]:
                        consumer.input[i] = keep
            for i, o in enumerate(model.graph.output):
                if o.name == node.output[0]:
                    raise GraphError(f"node {node.name}: a duplicated node drives the output")
            model.graph.node.remove(node)
            return model, True
        return model, False


# ops that move bipolar data without computing on the values
PASS_THROUGH = ("Transpose", "Im2Col", "MaxPoolNHWC", "MaxPool", "Reshape", "Flatten")


class ForkSafeBipolarToXnorPopcount(Transformation):
    """Bipolar x bipolar ``MatMul`` -> ``XnorPopcountMatMul`` (+ ``2*p - K`` correction).

    The producing bipolar ``MultiThreshold`` is re-encoded to BINARY {0, 1}: that is only
    correct if EVERY reader of its output (through pass-through layout ops) is such a
    MatMul, so all readers are converted together, or none and an error names the reader
    that cannot take {0, 1} data.
    """

    def _is_bipolar_mm(self, model: ModelWrapper, node) -> bool:
        return (node.op_type == "MatMul"
                and model.get_tensor_datatype(node.input[0]) == DataType["BIPOLAR"]
                and model.get_tensor_datatype(node.input[1]) == DataType["BIPOLAR"]
                and _const(model, node.input[1]) is not None)

    def _producer_mt(self, model: ModelWrapper, tensor: str):
        node = model.find_producer(tensor)
        while node is not None and node.op_type in PASS_THROUGH:
            node = model.find_producer(node.input[0])
        if node is not None and node.op_type == "MultiThreshold":
            return node
        return None

    def _readers(self, model: ModelWrapper, tensor: str) -> list:
        out = []
        for node in model.find_consumers(tensor) or []:
            if node.op_type in PASS_THROUGH:
                out += self._readers(model, node.output[0])
            else:
                out.append(node)
        return out

    def _convert_mm(self, model: ModelWrapper, node) -> None:
        weight = _const(model, node.input[1])
        k = weight.shape[0]
        model.set_initializer(node.input[1], ((weight + 1) / 2).astype(np.float32))
        model.set_tensor_datatype(node.input[1], DataType["BINARY"])
        node.op_type = "XnorPopcountMatMul"
        node.domain = "qonnx.custom_op.general"
        final = node.output[0]
        shape = model.get_tensor_shape(final)
        popcount = model.make_new_valueinfo_name()
        model.graph.value_info.append(oh.make_tensor_value_info(popcount, TensorProto.FLOAT, shape))
        model.set_tensor_datatype(popcount, DataType["UINT32"])
        scaled = model.make_new_valueinfo_name()
        model.graph.value_info.append(oh.make_tensor_value_info(scaled, TensorProto.FLOAT, shape))
        two, minus_k = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
        model.set_initializer(two, np.asarray([2.0], dtype=np.float32))
        model.set_initializer(minus_k, np.asarray([-float(k)], dtype=np.float32))
        node.output[0] = popcount
        idx = list(model.graph.node).index(node)
        model.graph.node.insert(idx + 1, oh.make_node("Mul", [popcount, two], [scaled]))
        model.graph.node.insert(idx + 2, oh.make_node("Add", [scaled, minus_k], [final]))

    def apply(self, model: ModelWrapper):
        changed = False
        for node in list(model.graph.node):
            if node.op_type != "MatMul" or not self._is_bipolar_mm(model, node):
                continue        # (already converted as a reader of an earlier threshold)
            src = node.input[0]
            mt = self._producer_mt(model, src)
            if mt is None:
                if src == model.graph.input[0].name:
                    model.set_tensor_datatype(src, DataType["BINARY"])
                    self._convert_mm(model, node)
                    changed = True
                    continue
                raise GraphError(f"node {node.name}: bipolar MatMul input has no bipolar "
                                 "threshold upstream; binary activations must come from a "
                                 "sign (BipolarQuant) of the model")
            inst = getCustomOp(mt)
            if (inst.get_nodeattr("out_scale"), inst.get_nodeattr("out_bias")) != (2.0, -1.0):
                raise GraphError(f"node {mt.name}: bipolar threshold with out_scale "
                                 f"{inst.get_nodeattr('out_scale')} / out_bias "
                                 f"{inst.get_nodeattr('out_bias')}, expected 2 / -1")
            readers = self._readers(model, mt.output[0])
            bad = [r for r in readers if not self._is_bipolar_mm(model, r)]
            if bad:
                raise GraphError(
                    f"node {mt.name}: its +-1 output feeds {node_label(bad[0])}, "
                    "which cannot read the {0,1} encoding the XNOR units need; give that "
                    "path its own sign or keep it integer in the model")
            inst.set_nodeattr("out_dtype", "BINARY")
            inst.set_nodeattr("out_scale", 1.0)
            inst.set_nodeattr("out_bias", 0.0)
            self._mark_binary(model, mt.output[0])
            for reader in readers:
                self._convert_mm(model, reader)
            changed = True
        if changed:   # one shape/datatype inference for all conversions
            model = model.transform(InferShapes()).transform(InferDataTypes())
        return model, False

    def _mark_binary(self, model: ModelWrapper, tensor: str) -> None:
        model.set_tensor_datatype(tensor, DataType["BINARY"])
        for node in model.find_consumers(tensor) or []:
            if node.op_type in PASS_THROUGH:
                self._mark_binary(model, node.output[0])


class AbsorbTransposeIntoFlatten(Transformation):
    """``Transpose(NHWC->NCHW) -> Reshape/Flatten to 2D -> MatMul(s)``: permute the
    weight rows of every MatMul reader and flatten the NHWC tensor directly.

    FINN's ``RemoveCNVtoFCFlatten`` does this for a single reader; a K-branch group of
    FC layers has K readers of the flattened tensor.
    """

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.op_type not in ("Reshape", "Flatten"):
                continue
            oshape = model.get_tensor_shape(node.output[0])
            producer = model.find_producer(node.input[0])
            if producer is None or producer.op_type != "Transpose" or len(oshape) != 2:
                continue
            if list(_attrs(producer).get("perm", [])) != [0, 3, 1, 2]:
                continue
            if len(model.find_consumers(producer.output[0])) != 1:
                continue
            readers = model.find_consumers(node.output[0]) or []
            if not readers or any(r.op_type not in ("MatMul", "XnorPopcountMatMul")
                                  or _const(model, r.input[1]) is None for r in readers):
                continue
            _, h, w, c = model.get_tensor_shape(producer.input[0])
            for reader in readers:
                weight = _const(model, reader.input[1])
                mh = weight.shape[1]
                permuted = weight.reshape(c, h, w, mh).transpose(1, 2, 0, 3).reshape(-1, mh)
                model.set_initializer(reader.input[1], permuted)
            node.input[0] = producer.input[0]
            if node.op_type == "Reshape":
                model.set_initializer(node.input[1], np.asarray(oshape, dtype=np.int64))
            model.graph.node.remove(producer)
            return model.transform(InferShapes()), True
        return model, False


class MoveAffinePastJoinAdd(Transformation):
    """``Add(c*x + d, c*y + e)`` -> ``c*(x + y) + (d + e)`` for one scalar ``c``.

    An ABC-Net layer (``models/abcnet.py``) sums the raw outputs of its M x N XNOR base
    pairs before its batch norm; each popcount carries FINN's ``2*p - MW`` correction, and
    FINN's MoveMulPastJoinAdd needs the Muls right before the Add. With the corrections
    moved past the sum, the popcounts add as integers and the one correction left is
    absorbed into the next thresholds. Each operand's Mul/Add must feed only its Add."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.graph.node:
            if node.op_type != "Add" or any(_const(model, i) is not None for i in node.input):
                continue
            terms = [self._affine(model, name) for name in node.input]
            if None in terms:
                continue
            (x, c1, d1, old1), (y, c2, d2, old2) = terms
            if c1.size != 1 or c2.size != 1 or float(c1.flat[0]) != float(c2.flat[0]):
                continue
            total, scaled = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            c_name, d_name = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            model.set_initializer(c_name, c1.astype(np.float32).reshape(c1.shape))
            bias = (np.asarray(d1, np.float32) + np.asarray(d2, np.float32)).astype(np.float32)
            model.set_initializer(d_name, bias)
            new = [oh.make_node("Add", [x, y], [total], name=f"{node.name}_sum"),
                   oh.make_node("Mul", [total, c_name], [scaled], name=f"{node.name}_scale"),
                   oh.make_node("Add", [scaled, d_name], [node.output[0]],
                                name=f"{node.name}_bias")]
            at = list(model.graph.node).index(node)
            for i, n in enumerate(new):
                model.graph.node.insert(at + i, n)
            for n in [node, *old1, *old2]:
                model.graph.node.remove(n)
            model = model.transform(InferShapes()).transform(InferDataTypes())
            return model, True
        return model, False

    @staticmethod
    def _affine(model: ModelWrapper, name: str):
        """(x, c, d, nodes) when ``name`` is ``Add(Mul(x, c), d)`` of scalar constants."""
        add = model.find_producer(name)
        if add is None or add.op_type != "Add" or len(model.find_consumers(name) or []) != 1:
            return None
        d = _const(model, add.input[1])
        mul = model.find_producer(add.input[0])
        if d is None or d.size != 1 or mul is None or mul.op_type != "Mul" or \
                len(model.find_consumers(mul.output[0]) or []) != 1:
            return None
        c = _const(model, mul.input[1])
        if c is None or _const(model, mul.input[0]) is not None:
            return None
        return mul.input[0], c, d, [add, mul]


class MoveTransposePastThresholdFork(Transformation):
    """A Transpose whose consumers are all MultiThresholds gets one copy per consumer, so
    that each is absorbed into its threshold (an ABC-Net layer's N shifted signs read
    one sum). Forks into anything else (Group-Net's branch convs) are left as they are:
    their Transposes are merged, not split (``MergeIdenticalSiblings``)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.graph.node:
            if node.op_type != "Transpose":
                continue
            consumers = model.find_consumers(node.output[0]) or []
            if len(consumers) < 2 or any(c.op_type != "MultiThreshold" for c in consumers):
                continue
            at = list(model.graph.node).index(node)
            for i, consumer in enumerate(consumers[1:], start=1):
                out = model.make_new_valueinfo_name()
                copy = oh.make_node("Transpose", list(node.input), [out],
                                    name=f"{node.name}_fork{i}")
                copy.attribute.extend(node.attribute)
                model.graph.node.insert(at + i, copy)
                for j, name in enumerate(consumer.input):
                    if name == node.output[0]:
                        consumer.input[j] = out
            model = model.transform(InferShapes()).transform(InferDataTypes())
            return model, True
        return model, False


class WidenXnorAccumulators(Transformation):
    """Give every XNOR-popcount MVAU an accumulator that holds its popcount.

    finn-plus 1.6.1's MinimizeAccumulatorWidth sizes an XNOR MVAU's accumulator from the
    range of the bipolar dot product (+-1 weights times {0, 1} inputs), but the layer
    computes the popcount of matches, 0..MW. A classifier with MW = 128 got INT8
    (-128..127): an image whose 128 bits all match its class's weights scores 128, which
    wraps to -128 (found by the RTL simulation of a trained model; FINN's HLS layer would
    wrap the same way). This pass widens such accumulators, and the output datatype of
    layers without thresholds (the raw scores), to the unsigned width of 0..MW (a
    multiple of 8 for the graph's last layer, as FINN does). Thresholds of the others
    already lie on the popcount scale."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.graph.node:
            if not node.op_type.startswith("MVAU"):
                continue
            inst = getCustomOp(node)
            if not inst.get_nodeattr("binaryXnorMode"):
                continue
            mw = int(inst.get_nodeattr("MW"))
            acc = DataType[inst.get_nodeattr("accDataType")]
            if acc.min() <= 0 and acc.max() >= mw:
                continue
            bits = int(mw).bit_length()
            if inst.get_nodeattr("noActivation") and model.find_consumer(node.output[0]) is None:
                bits = -(-bits // 8) * 8
            wide = DataType[f"UINT{bits}"]
            inst.set_nodeattr("accDataType", wide.name)
            if inst.get_nodeattr("noActivation"):
                inst.set_nodeattr("outputDataType", wide.name)
                model.set_tensor_datatype(node.output[0], wide)
        return model, False
