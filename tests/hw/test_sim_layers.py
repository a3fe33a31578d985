"""Every layer of a tiny Group-Net build simulated alone: cycles per frame within 10% of
FINN's estimate, for every layer kind (a slower RTL or a wrong estimate fails here)."""

import pytest
from qonnx.core.modelwrapper import ModelWrapper

from groupnet.hw.sim.layers import isolated_model, layer_cycles
from groupnet.hw.topology import base_op

pytestmark = [pytest.mark.verilator, pytest.mark.slow]   # a Verilator build per layer


@pytest.fixture(scope="module")
def cnv(tiny_build):
    return tiny_build("test_groupnet_cnv")


def test_every_layer_kind_runs_at_its_estimate(cnv):
    rows = layer_cycles(cnv, per_kind=2)
    nodes = [n.name for n in ModelWrapper(str(cnv / "dataflow.onnx")).graph.node]
    assert [r["name"] for r in rows] == [n for n in nodes if n in {r["name"] for r in rows}]
    kinds = {r["op_type"] for r in rows}
    assert {"MVAU", "ConvolutionInputGenerator", "DuplicateStreams", "ElementwiseAdd",
            "Thresholding", "Pool"} <= kinds
    off = [(r["name"], r["cycles_per_frame"], r["finn_cycles"]) for r in rows
           if abs(r["ratio"] - 1) > 0.10]
    assert not off, f"simulated vs estimated cycles per frame off by more than 10%: {off}"
    # the MVAU runs at FINN's exp_cycles exactly: one fold per cycle; the sliding window
    # at max(input beats, output beats) exactly
    assert all(r["ratio"] == 1.0 for r in rows
               if r["op_type"] in ("MVAU", "ConvolutionInputGenerator"))


def test_an_add_alone_is_fed_through_one_duplicated_stream(cnv):
    model = ModelWrapper(str(cnv / "dataflow.onnx"))
    add = next(n for n in model.graph.node if base_op(n.op_type) == "ElementwiseAdd")
    sub = isolated_model(model, add)
    assert [base_op(n.op_type) for n in sub.graph.node] == ["DuplicateStreams",
                                                              "ElementwiseAdd"]
    assert len(sub.graph.input) == 1 and sub.graph.output[0].name == add.output[0]
