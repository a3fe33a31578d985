"""Value approximation through the flow (issue 30): FINN's CNV-w1a2 / w2a2 and the
ABC-Net-style multi-base network, bit-exact from the QONNX export through the HW graph's
Python execution after every stage and the Verilator simulation, on real images."""

import json
from collections import Counter

import numpy as np
import pytest
from onnx import TensorProto
from onnx import helper as oh
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

from groupnet.hw import transforms as gt
from groupnet.hw.build import BuildConfig, run_build
from groupnet.hw.finn_env import prepare

VARIANTS = ["test_cnv_w1a2", "test_cnv_w2a2", "test_abc_cnv"]


@pytest.fixture(scope="module")
def built(exported, images, tmp_path_factory):
    cache = {}

    def get(name: str):
        if name not in cache:
            out = tmp_path_factory.mktemp("va") / name
            status = run_build(BuildConfig(model=str(exported(name)), out=str(out),
                                           board="pynq-z2", verify=True, to_step="estimates"),
                               images, progress=False)
            cache[name] = (out, status)
        return cache[name]
    return get


@pytest.mark.parametrize("name", VARIANTS)
def test_value_approximation_builds_bit_exact(name, built):
    out, status = built(name)
    assert status["state"] == "complete"
    ver = json.loads((out / "report/verification.json").read_text())
    assert ver and all(v["bit_exact"] for v in ver.values()), ver
    df = ModelWrapper(str(out / "dataflow.onnx"))
    assert all(n.domain.startswith("finn.custom_op.fpgadataflow") for n in df.graph.node)


def _mvaus(out):
    from qonnx.custom_op.registry import getCustomOp
    part = ModelWrapper(str(sorted((out / "partitions").glob("*.onnx"))[0]))
    return [getCustomOp(n) for n in part.graph.node if n.op_type.startswith("MVAU")], part


def test_w2a2_layers_take_2_bit_weights_and_activations(built):
    mvaus, _ = _mvaus(built("test_cnv_w2a2")[0])
    assert [m.get_nodeattr("weightDataType") for m in mvaus] == ["INT2"] * len(mvaus)
    assert {m.get_nodeattr("inputDataType") for m in mvaus[1:]} == {"INT2"}
    mvaus, _ = _mvaus(built("test_cnv_w1a2")[0])
    assert {m.get_nodeattr("weightDataType") for m in mvaus} == {"BIPOLAR"}


def test_abc_layers_are_one_xnor_mvau_per_base_pair_and_an_integer_add_tree(built):
    """M = N = 2: 4 XNOR MVAUs per layer after the stem (8 layers), 3 integer adds each,
    N = 2 thresholdings per layer output."""
    mvaus, part = _mvaus(built("test_abc_cnv")[0])
    ops = Counter(n.op_type.split("_")[0] for n in part.graph.node)
    assert len(mvaus) == 1 + 8 * 4
    assert sum(m.get_nodeattr("binaryXnorMode") for m in mvaus) == 8 * 4
    assert ops["ElementwiseAdd"] == 8 * 3 and ops["Thresholding"] == 8 * 2


@pytest.mark.verilator
@pytest.mark.parametrize("name", ["test_cnv_w2a2", "test_abc_cnv"])
def test_value_approximation_simulates_bit_exact(name, built, images):
    from groupnet.hw.sim.run import simulate
    out, _ = built(name)
    prepare(out / "finn_tmp")
    result = simulate(out, images[:4])
    assert result["bit_exact"] and result["frames"] == 4


def test_affine_corrections_move_past_the_join_add():
    """(2p - 9) + (2q - 9) -> 2 (p + q) - 18, the same values, one Mul and Add left."""
    def t(name):
        return oh.make_tensor_value_info(name, TensorProto.FLOAT, [1, 4])
    nodes = [oh.make_node("Mul", ["p", "c"], ["pm"]), oh.make_node("Add", ["pm", "d"], ["pa"]),
             oh.make_node("Mul", ["q", "c2"], ["qm"]), oh.make_node("Add", ["qm", "d"], ["qa"]),
             oh.make_node("Add", ["pa", "qa"], ["y"])]
    graph = oh.make_graph(nodes, "g", [t("p"), t("q")], [t("y")])
    model = ModelWrapper(oh.make_model(graph)).transform(InferShapes())
    for name, value in (("c", 2.0), ("c2", 2.0), ("d", -9.0)):
        model.set_initializer(name, np.array([value], np.float32))
    rng = np.random.default_rng(0)
    feed = {"p": rng.integers(0, 10, (1, 4)).astype(np.float32),
            "q": rng.integers(0, 10, (1, 4)).astype(np.float32)}
    before = execute_onnx(model, feed)["y"]
    model = model.transform(gt.MoveAffinePastJoinAdd())
    assert np.array_equal(execute_onnx(model, feed)["y"], before)
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops == {"Add": 2, "Mul": 1}
