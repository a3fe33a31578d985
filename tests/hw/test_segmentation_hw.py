"""A BPAC segmentation Group-Net through the flow: every layer a HW layer (the dilated
sliding windows included), Python execution bit-exact after every stage, and the stitched
accelerator simulated in Verilator bit-exact on real test scenes."""

import json

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
    real scenes, built as `groupnet build` does by default (its FIFOs sized by simulation:
    the BPAC branches deadlock on unsized ones) with the per-stage checks."""
    work = tmp_path_factory.mktemp("seg")
    cfg = TrainConfig("test_groupnet_segnet", dataset="fashion-mnist-scenes", epochs=1,
                      train_limit=256, test_limit=32, val_limit=32, batch_size=64, overrides={"k": 4})
    train(cfg, work / "run", progress=False)
    ckpt = work / "run" / "test_groupnet_segnet.pt"
    out = work / "build"
    status = build_model(BuildConfig(model=str(ckpt), out=str(out), to_step="size_fifos"),
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
    # the line-buffer cost per rate (the segmentation table's column): every window once
    from groupnet.hw.context import Build
    from groupnet.hw.estimates import windows_by_dilation
    build = Build.open(out)
    rows = windows_by_dilation(df, build.estimates())
    k = [tuple(s.get_nodeattr("ConvKernelDim")) for s in swgs]
    assert [r["rate"] for r in rows] == sorted({d[0] for d, kk in zip(dilations, k)
                                                if kk != (1, 1)})
    assert sum(r["windows"] for r in rows) == sum(kk != (1, 1) for kk in k)
    assert all(r["lut"] > 0 for r in rows)


@pytest.mark.verilator
def test_segmentation_accelerator_is_bit_exact_on_real_scenes(seg_build, scenes):
    from groupnet.hw.sim.run import simulate
    ckpt, out, _ = seg_build
    sizing = json.loads((out / "report" / "fifo_sizing.json").read_text())
    assert sizing["throughput_kept"]          # sized by the build (on its --verify scenes)
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


@pytest.mark.verilator
def test_deployed_driver_segments_like_the_pytorch_model(seg_build, scenes, tmp_path):
    """The driver's masks (sim backend; numpy upsampling + argmax on the host) are the
    PyTorch model's predicted masks, and its mIoU is the evaluation's."""
    from groupnet.hw.driver.groupnet_driver import Accelerator
    from groupnet.hw.deploy.package import deploy
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.train import evaluate
    ckpt, out, _ = seg_build
    images, masks = scenes
    result = deploy(out, tmp_path / "deploy", images[:6], masks[:6])
    assert "validation_miou_expected" in result
    accel = Accelerator(tmp_path / "deploy", backend="sim", batch_size=6, verbose=False)
    assert accel.score_maps(images[:6]).shape == (6, 11, 16, 16)
    got = accel.predict(images[:6])
    model, _ = load_checkpoint(ckpt)
    want = evaluate(model, images[:6], masks[:6])
    assert np.array_equal(got, want["predictions"])
    check = accel.validate()
    assert check["bit_exact"] and check["miou"] == pytest.approx(want["miou"], abs=1e-6)
    assert check["pixel_accuracy"] == pytest.approx(want["accuracy"])


def test_host_upsampling_and_miou_match_torch():
    import torch

    from groupnet.hw.driver.groupnet_driver.segmentation import (segmentation_metrics,
                                                                         upsample_bilinear)
    from groupnet.models.segnet import upsample_scores
    from groupnet.models.train import segmentation_scores
    rng = np.random.default_rng(0)
    ints = rng.integers(-30, 30, (3, 11, 16, 16)).astype(np.float32)
    assert np.array_equal(upsample_bilinear(ints, (64, 64)),                # exact: x4
                          upsample_scores(torch.from_numpy(ints), (64, 64)).numpy())
    odd = rng.normal(size=(2, 3, 5, 7)).astype(np.float32)
    np.testing.assert_allclose(upsample_bilinear(odd, (23, 40)),
                               upsample_scores(torch.from_numpy(odd), (23, 40)).numpy(),
                               atol=1e-5)
    for seed in range(3):
        pred = rng.integers(0, 5, (4, 30, 30))
        target = rng.integers(0, 4, (4, 30, 30))
        target[0, :3] = 255
        ours = segmentation_metrics(pred, target, 7)
        ref = segmentation_scores(torch.from_numpy(pred), torch.from_numpy(target), 7)
        assert ours["miou"] == pytest.approx(ref["miou"], abs=1e-6)
        assert ours["pixel_accuracy"] == pytest.approx(ref["accuracy"])
