"""The Vivado hand-off of simulated FIFO depths: finn-plus's own step_set_fifo_depths
(auto_fifo_depths=False) reads the file this project writes and ends with FINN FIFOs of
exactly the simulated depths. Only the step's Vivado calls (HLS code/IP generation of the
new FIFOs) are stubbed; its graph rewriting is FINN's."""

import json

import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from groupnet.hw.build import BuildConfig, BuildContext, BuildPaths
from groupnet.hw.boards import get_board
from groupnet.hw.fifo_handoff import FINN_FIFO_CONFIG, sim_stream
from groupnet.hw.sim.run import size_fifos

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


@pytest.fixture(scope="module")
def sized(tiny_build, images, tmp_path_factory):
    import shutil
    src = tiny_build()
    out = tmp_path_factory.mktemp("handoff") / "b"
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("finn_tmp", "sim"))
    result = size_fifos(out, images[:4])
    return out, result


def test_finn_fifo_config_is_written_in_finns_format(sized):
    out, result = sized
    info = json.loads((out / FINN_FIFO_CONFIG).read_text())
    assert set(info) == {"fifo_depths", "impl_style", "ram_style"}
    assert all(name.startswith("StreamingFIFO_rtl_") for name in info["fifo_depths"])
    # every simulated depth above 2 appears among FINN's FIFOs
    deep = sorted(d for d in result["depths"].values() if d > 2)
    assert deep and sorted(d for d in info["fifo_depths"].values() if d > 2) == deep


def test_finn_step_set_fifo_depths_applies_the_sized_depths(sized, monkeypatch):
    from groupnet.hw.finn_env import finn_builder_steps
    finn_steps = finn_builder_steps()
    out, result = sized
    for stub in ("step_hw_codegen", "step_hw_ipgen"):        # Vivado/Vitis HLS only
        monkeypatch.setattr(finn_steps, stub, lambda model, cfg, parent_node=None: model)
    cfg = json.loads((out / "build.json").read_text())
    ctx = BuildContext(BuildConfig(model="m.onnx", out=str(out)), get_board(cfg["board"]["name"]),
                       BuildPaths(out), cfg["clock_mhz"])
    finn_cfg = ctx.finn_config()
    assert finn_cfg.auto_fifo_depths is False and finn_cfg.fifo_config_file
    dataflow = ModelWrapper(str(out / "dataflow.onnx"))
    model = finn_steps.step_set_fifo_depths(dataflow, finn_cfg)
    # FINN's graph: each simulated edge deeper than 2 is one FINN FIFO of that depth, the
    # one right after the edge's producer (the graph input for the first edge)
    finn_depths = {}
    for node in model.get_nodes_by_op_type("StreamingFIFO_rtl"):
        producer = model.find_producer(node.input[0])
        after_dwc = producer is not None and producer.op_type.startswith(
            "StreamingDataWidthConverter")
        depth = getCustomOp(node).get_nodeattr("depth")
        assert not (after_dwc and depth > 2), f"{node.name}: deep FIFO behind a converter"
        finn_depths[node.name] = depth
    assert sorted(v for v in finn_depths.values() if v > 2) == \
        sorted(d for d in result["depths"].values() if d > 2)
    report = json.loads((out / "finn" / "report" / "fifo_sizing.json").read_text())
    assert report["fifo_depths"] == json.loads((out / FINN_FIFO_CONFIG).read_text())["fifo_depths"]
