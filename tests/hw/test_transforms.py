"""Each graph pass on a small graph: execute before and after, compare exactly."""

import numpy as np
import pytest
from onnx import TensorProto
from onnx import helper as oh
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul
from qonnx.util.basic import qonnx_make_model

from groupnet.hw import transforms as gt

RNG = np.random.default_rng(0)


def make(nodes, inp, out, inits=None, dtypes=None, value_info=()):
    graph = oh.make_graph(nodes, "t", [oh.make_tensor_value_info("x", TensorProto.FLOAT, inp)],
                          [oh.make_tensor_value_info("y", TensorProto.FLOAT, out)],
                          value_info=list(value_info))
    model = ModelWrapper(qonnx_make_model(graph))
    for name, value in (inits or {}).items():
        dtype = np.int64 if name in ("shape", "pads") else np.float32   # ONNX wants int64
        model.set_initializer(name, np.asarray(value, dtype=dtype))
    model = model.transform(InferShapes())
    for name, dt in (dtypes or {}).items():
        model.set_tensor_datatype(name, DataType[dt])
    return model


def run(model, x):
    return execute_onnx(model, {"x": x.astype(np.float32)})["y"]


def mt(inp, out, thresholds_name, dtype="BIPOLAR"):
    scale, bias = (2.0, -1.0) if dtype == "BIPOLAR" else (1.0, 0.0)
    return oh.make_node("MultiThreshold", [inp, thresholds_name], [out],
                        domain="qonnx.custom_op.general", out_dtype=dtype,
                        out_scale=scale, out_bias=bias)


def bipolar(*shape):
    return RNG.choice([-1.0, 1.0], size=shape)


def test_remove_input_identity_quant():
    nodes = [oh.make_node("Quant", ["x", "s", "z", "b"], ["q"], domain="qonnx.custom_op.general",
                          signed=0, narrow=0, rounding_mode="ROUND"),
             oh.make_node("Mul", ["q", "c"], ["y"])]
    model = make(nodes, [1, 4], [1, 4], {"s": 1.0, "z": 0.0, "b": 8.0, "c": [2.0]})
    x = RNG.integers(0, 256, (1, 4))
    before = run(model, x)
    model, changed = gt.RemoveInputIdentityQuant().apply(model)
    assert changed and [n.op_type for n in model.graph.node] == ["Mul"]
    assert model.get_tensor_datatype("x") == DataType["UINT8"]
    assert np.array_equal(run(model, x), before)


def test_input_quant_with_real_scale_stays():
    nodes = [oh.make_node("Quant", ["x", "s", "z", "b"], ["y"], domain="qonnx.custom_op.general",
                          signed=0, narrow=0, rounding_mode="ROUND")]
    model = make(nodes, [1, 4], [1, 4], {"s": 0.5, "z": 0.0, "b": 8.0})
    _, changed = gt.RemoveInputIdentityQuant().apply(model)
    assert not changed


def test_strip_output_affine_records_mapping():
    w = bipolar(6, 3)
    nodes = [oh.make_node("MatMul", ["x", "w"], ["m"]), oh.make_node("Mul", ["m", "a"], ["n"]),
             oh.make_node("Add", ["n", "b"], ["y"])]
    model = make(nodes, [1, 6], [1, 3], {"w": w, "a": [0.25], "b": [3.0]})
    x = bipolar(1, 6)
    before = run(model, x)
    for _ in range(3):
        model = model.transform(gt.StripOutputAffine("k"))
    assert [n.op_type for n in model.graph.node] == ["MatMul"]
    scale = float(model.get_metadata_prop("k_scale"))
    bias = float(model.get_metadata_prop("k_bias"))
    assert (scale, bias) == (0.25, 3.0)
    assert np.array_equal(run(model, x) * scale + bias, before)


def test_negative_output_scale_is_kept():
    nodes = [oh.make_node("MatMul", ["x", "w"], ["m"]), oh.make_node("Mul", ["m", "a"], ["y"])]
    model = make(nodes, [1, 2], [1, 2], {"w": np.eye(2), "a": [-1.0]})
    _, changed = gt.StripOutputAffine().apply(model)
    assert not changed


def test_merge_identical_siblings():
    nodes = [oh.make_node("Transpose", ["x"], ["a"], perm=[0, 2, 3, 1]),
             oh.make_node("Transpose", ["x"], ["b"], perm=[0, 2, 3, 1]),
             oh.make_node("Transpose", ["x"], ["c"], perm=[0, 3, 2, 1]),
             oh.make_node("Add", ["a", "b"], ["d"]),
             oh.make_node("Transpose", ["c"], ["e"], perm=[0, 2, 1, 3]),
             oh.make_node("Add", ["d", "e"], ["y"])]
    model = make(nodes, [1, 2, 3, 3], [1, 3, 3, 2])
    x = RNG.normal(size=(1, 2, 3, 3))
    before = run(model, x)
    model = model.transform(gt.MergeIdenticalSiblings())
    assert [n.op_type for n in model.graph.node].count("Transpose") == 3   # a/b merged, c kept
    assert np.array_equal(run(model, x), before)


def _fork_graph(extra_reader=False):
    nodes = [mt("x", "s", "t"), oh.make_node("MatMul", ["s", "w1"], ["m1"]),
             oh.make_node("MatMul", ["s", "w2"], ["m2"]), oh.make_node("Add", ["m1", "m2"], ["y"])]
    inits = {"t": np.zeros((1, 1)), "w1": bipolar(8, 4), "w2": bipolar(8, 4)}
    if extra_reader:
        nodes[-1] = oh.make_node("Add", ["m1", "m2"], ["y0"])
        nodes += [oh.make_node("ReduceSum", ["s"], ["r"], keepdims=1),
                  oh.make_node("Add", ["y0", "r"], ["y"])]
    model = make(nodes, [1, 8], [1, 4], inits,
                 {"s": "BIPOLAR", "w1": "BIPOLAR", "w2": "BIPOLAR"})
    return model


def test_fork_safe_xnor_converts_every_branch():
    model = _fork_graph()
    x = RNG.normal(size=(1, 8))
    before = run(model, x)
    model = model.transform(gt.ForkSafeBipolarToXnorPopcount())
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("XnorPopcountMatMul") == 2 and "MatMul" not in ops
    assert model.get_tensor_datatype("s") == DataType["BINARY"]
    assert np.array_equal(run(model, x), before)


def test_stock_qonnx_pass_is_silently_wrong_on_the_fork():
    """Why the fork-safe pass exists: qonnx's conversion re-encodes the shared threshold
    for branch 1 and leaves branch 2 multiplying {0,1} data by +-1 weights."""
    from qonnx.transformation.bipolar_to_xnor import ConvertBipolarMatMulToXnorPopcount
    model = _fork_graph()
    x = RNG.normal(size=(1, 8))
    before = run(model, x)
    model = model.transform(ConvertBipolarMatMulToXnorPopcount())
    assert [n.op_type for n in model.graph.node].count("MatMul") == 1
    assert not np.array_equal(run(model, x), before)


def test_fork_safe_xnor_refuses_non_xnor_reader():
    with pytest.raises(gt.GraphError, match="ReduceSum.*cannot read the \\{0,1\\} encoding"):
        _fork_graph(extra_reader=True).transform(gt.ForkSafeBipolarToXnorPopcount())


def test_absorb_transpose_into_forked_flatten():
    nodes = [oh.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             oh.make_node("Reshape", ["t", "shape"], ["f"]),
             oh.make_node("MatMul", ["f", "w1"], ["m1"]), oh.make_node("MatMul", ["f", "w2"], ["m2"]),
             oh.make_node("Add", ["m1", "m2"], ["y"])]
    model = make(nodes, [1, 2, 3, 4], [1, 5],
                 {"shape": [1, 24], "w1": RNG.normal(size=(24, 5)), "w2": RNG.normal(size=(24, 5))})
    x = RNG.integers(-3, 4, (1, 2, 3, 4))
    before = run(model, x)
    model = model.transform(gt.AbsorbTransposeIntoFlatten())
    assert "Transpose" not in [n.op_type for n in model.graph.node]
    assert np.allclose(run(model, x), before, rtol=0, atol=1e-4)   # float weights reordered


def test_bipolar_pad_into_conv_then_xnor_is_exact():
    """-1 padding absorbed into the conv, exact again after XNOR re-encoding."""
    nodes = [mt("x", "s", "th"),
             oh.make_node("Pad", ["s", "pads", "val"], ["p"], mode="constant"),
             oh.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3], strides=[1, 1],
                          dilations=[1, 1], group=1, pads=[0, 0, 0, 0])]
    model = make(nodes, [1, 2, 4, 4], [1, 3, 4, 4],
                 {"th": np.zeros((2, 1)), "val": -1.0, "w": bipolar(3, 2, 3, 3),
                  "pads": [0, 0, 1, 1, 0, 0, 1, 1]},
                 {"s": "BIPOLAR", "p": "BIPOLAR", "w": "BIPOLAR"},
                 [oh.make_tensor_value_info("p", TensorProto.FLOAT, [1, 2, 6, 6]),
                  oh.make_tensor_value_info("s", TensorProto.FLOAT, [1, 2, 4, 4])])
    x = RNG.normal(size=(1, 2, 4, 4))
    before = run(model, x)
    model = model.transform(gt.AbsorbBipolarPadIntoConv())
    assert "Pad" not in [n.op_type for n in model.graph.node]
    model = model.transform(InferDataTypes()).transform(LowerConvsToMatMul())
    model = model.transform(gt.ForkSafeBipolarToXnorPopcount())
    assert np.array_equal(run(model, x), before)


def test_minus_one_pad_of_an_integer_tensor_is_refused():
    nodes = [oh.make_node("Pad", ["x", "pads", "val"], ["p"], mode="constant"),
             oh.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3])]
    model = make(nodes, [1, 2, 4, 4], [1, 3, 4, 4],
                 {"val": -1.0, "w": bipolar(3, 2, 3, 3), "pads": [0, 0, 1, 1, 0, 0, 1, 1]},
                 {"x": "INT4"}, [oh.make_tensor_value_info("p", TensorProto.FLOAT, [1, 2, 6, 6])])
    with pytest.raises(gt.GraphError, match="padding with -1 of a INT4 tensor"):
        model.transform(gt.AbsorbBipolarPadIntoConv())
