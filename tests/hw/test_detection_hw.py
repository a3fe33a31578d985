"""The Group-Net detector through the flow: every layer a HW layer (the 4-bit-input
predictor an MVAU without XNOR), bit-exact after every stage, the accelerator simulated
in Verilator bit-exact on real test scenes, and the deployed driver's boxes equal to the
evaluation's."""

import json

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from groupnet.flow import build_model
from groupnet.hw.build import BuildConfig
from groupnet.models.data import load_dataset
from groupnet.models.train import TrainConfig, train


@pytest.fixture(scope="module")
def scenes():
    return load_dataset("fashion-mnist-boxes", "test", limit=8)


@pytest.fixture(scope="module")
def det_build(tmp_path_factory, scenes):
    work = tmp_path_factory.mktemp("det")
    cfg = TrainConfig("test_groupnet_detnet", dataset="fashion-mnist-boxes", epochs=1,
                      train_limit=256, test_limit=32, val_limit=32, batch_size=64)
    train(cfg, work / "run", progress=False)
    ckpt = work / "run" / "test_groupnet_detnet.pt"
    out = work / "build"
    build_model(BuildConfig(model=str(ckpt), out=str(out), to_step="estimates"),
                images=scenes[0][:4], progress=False)
    return ckpt, out


def test_detector_builds_bit_exact_with_a_multibit_predictor(det_build):
    _, out = det_build
    ver = json.loads((out / "report" / "verification.json").read_text())
    assert all(v["bit_exact"] for v in ver.values() if isinstance(v, dict) and "bit_exact" in v)
    assert ver["pytorch"]["bit_exact"]
    df = ModelWrapper(str(out / "dataflow.onnx"))
    last = getCustomOp(df.find_producer(df.graph.output[0].name))
    assert last.onnx_node.op_type.startswith("MVAU")
    assert last.get_nodeattr("binaryXnorMode") == 0
    assert last.get_nodeattr("inputDataType") == "INT4"
    assert last.get_nodeattr("MH") == 15                    # 10 classes + 4 + 1


@pytest.mark.verilator
def test_detector_accelerator_and_driver(det_build, scenes, tmp_path):
    from groupnet.hw.driver.groupnet_driver import Accelerator
    from groupnet.hw.deploy.package import deploy
    from groupnet.hw.sim.run import simulate, size_fifos
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.detnet import evaluate_detection
    ckpt, out = det_build
    images, boxes = scenes
    assert size_fifos(out, images[:4])["throughput_kept"]
    sim = simulate(out, images[:6])
    assert sim["bit_exact"] and sim["cycles_per_frame"] >= 0.95 * sim["bound_cycles_per_frame"]
    deploy(out, tmp_path / "deploy", images[:6], boxes[:6])
    accel = Accelerator(tmp_path / "deploy", backend="sim", batch_size=6, verbose=False)
    got = accel.detect(images[:6])
    model, _ = load_checkpoint(ckpt)
    want = evaluate_detection(model, images[:6], boxes[:6])
    for g, w in zip(got, want["detections"]):
        assert np.array_equal(g["classes"], w["classes"])
        np.testing.assert_array_equal(g["boxes"], w["boxes"])
        np.testing.assert_array_equal(g["scores"], w["scores"])
    check = accel.validate()
    assert check["bit_exact"] and check["map50"] == pytest.approx(want["map50"])


@pytest.mark.verilator
@pytest.mark.full    # the board-like venv: test_deploy and the TFC test in `make test`
def test_detector_driver_in_board_like_venv(det_build, scenes, tmp_path):
    """The board's Python (3.10, numpy<2, pycocotools, no torch): boxes and mAP."""
    import subprocess
    from pathlib import Path

    from groupnet.hw.deploy.package import deploy
    from groupnet.hw.sim.run import size_fifos
    board_py = Path(__file__).resolve().parents[2] / ".venv-board" / "bin" / "python"
    if not board_py.exists():
        pytest.skip("no board-like venv (`make board-venv`)")
    _, out = det_build
    if not (out / "fifo_depths.json").exists():
        size_fifos(out, scenes[0][:4])
    deploy(out, tmp_path / "d", scenes[0][:6], scenes[1][:6])
    run = subprocess.run([str(board_py), str(tmp_path / "d" / "driver.py"), "--exec_mode",
                          "validate", "--backend", "sim", "--json"],
                         capture_output=True, text=True, cwd="/")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["bit_exact"] and result["map50"] is not None and result["n"] == 6
