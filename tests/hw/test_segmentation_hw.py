"""A BPAC segmentation Group-Net through the flow: every layer a HW layer (the dilated
sliding windows included), Python execution bit-exact after every stage, and the stitched
accelerator simulated in Verilator bit-exact on real test scenes."""

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from groupnet.flow import build_model, pytorch_scores
from groupnet.hw.build import BuildConfig
from groupnet.models.data import load_dataset
from groupnet.models.segnet import RATES
from groupnet.models.train import TrainConfig, train


@pytest.fixture(scope="module")
def scenes():
    return load_dataset("fashion-mnist-scenes", "test", limit=8)


@pytest.fixture(scope="module")
def seg_build(tmp_path_factory, scenes):
    """test_groupnet_segnet (K=4: four rates per atrous group), trained one short epoch on
    real scenes, built through 'estimates' with the per-stage checks."""
    work = tmp_path_factory.mktemp("seg")
    cfg = TrainConfig("test_groupnet_segnet", dataset="fashion-mnist-scenes", epochs=1,
                      train_limit=256, test_limit=32, batch_size=64, overrides={"k": 4})
    train(cfg, work / "run", progress=False)
    ckpt = work / "run" / "test_groupnet_segnet.pt"
    out = work / "build"
    status = build_model(BuildConfig(model=str(ckpt), out=str(out), to_step="estimates"),
                         images=scenes[0][:4], progress=False)
    return ckpt, out, status


def test_segmentation_builds_bit_exact_at_every_stage(seg_build):
    import json
    _, out, _ = seg_build
    ver = json.loads((out / "report" / "verification.json").read_text())
    stages = {k: v for k, v in ver.items() if isinstance(v, dict) and "bit_exact" in v}
    assert {"prepare", "streamline", "convert_to_hw", "dataflow_partition",
            "pytorch"} <= set(stages)
    assert all(v["bit_exact"] for v in stages.values()), stages


def test_sliding_windows_carry_each_branch_rate(seg_build):
    _, out, _ = seg_build
    df = ModelWrapper(str(out / "dataflow.onnx"))
    swgs = [getCustomOp(n) for n in df.graph.node
            if n.op_type.startswith("ConvolutionInputGenerator")]
    dilations = [tuple(s.get_nodeattr("Dilation")) for s in swgs]
    # stem, group 1 and 2 (4 branches each) undilated; then the atrous groups, branch order
    assert dilations[-8:] == [(r, r) for r in RATES[0] + RATES[1]]
    assert set(dilations[:-8]) == {(1, 1)}


@pytest.mark.verilator
def test_segmentation_accelerator_is_bit_exact_on_real_scenes(seg_build, scenes):
    from groupnet.hw.sim.run import simulate, size_fifos
    ckpt, out, _ = seg_build
    sizing = size_fifos(out, scenes[0][:4])
    assert sizing["throughput_kept"]
    result = simulate(out, scenes[0][:6])
    assert result["bit_exact"] and result["frames"] == 6
    assert result["cycles_per_frame"] >= 0.95 * result["bound_cycles_per_frame"]
    # the stream is the NHWC map of popcounts; mapped to scores and put in NCHW order, it
    # is the PyTorch model's integer score map
    from groupnet.hw.sim.run import reference_outputs
    from groupnet.hw.verify import to_scores
    raw = reference_outputs(out, scenes[0][:6])
    nhwc = to_scores(ModelWrapper(str(out / "dataflow.onnx")), raw).reshape(6, 16, 16, 11)
    want = pytorch_scores(ckpt, scenes[0][:6]).reshape(6, 11, 16, 16)
    assert np.array_equal(nhwc.transpose(0, 3, 1, 2), want)
