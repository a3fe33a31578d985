"""The build flow end to end on tiny Group-Nets: layout, bit-exactness, resume, errors."""

import json

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper

from groupnet.hw.boards import BOARDS
from groupnet.hw.build import BuildConfig, BuildError, run_build
from groupnet.hw.finn_env import toolchain
from groupnet.hw.topology import base_op, summary
from groupnet.hw.transforms import GraphError

NO_VIVADO = not toolchain().available


@pytest.fixture(scope="module")
def cnv_build(exported, images, tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "cnv"
    status = run_build(BuildConfig(model=str(exported("test_groupnet_cnv")), out=str(out),
                                   board="pynq-z2", verify=True), images, progress=False)
    return out, status


def test_layout_and_status(cnv_build):
    out, status = cnv_build
    for rel in ("build.json", "input.onnx", "parent.onnx", "dataflow.onnx", "folding.json",
                "report/estimates.json", "report/verification.json",
                "report/time_per_step.json", "report/status.json", "report/build.log"):
        assert (out / rel).is_file(), rel
    saved = sorted(p.name for p in (out / "intermediate_models").glob("*.onnx"))
    assert saved[:4] == ["00_prepare.onnx", "01_qonnx_to_finn.onnx", "02_streamline.onnx",
                         "03_convert_to_hw.onnx"]
    if NO_VIVADO:
        assert status["state"] == "stopped" and status["stopped_before"] == "hw_ipgen"
        assert "vivado" in status["reason"]
        assert {"estimates", "size_fifos"} <= set(status["completed"])


def test_fifos_sized_by_default(cnv_build):
    """The build ends with FIFO depths sized by simulation: the accelerator keeps its
    throughput and never deadlocks on its images; FINN's Vivado flow gets the depths."""
    out, _ = cnv_build
    depths = json.loads((out / "fifo_depths.json").read_text())
    sizing = json.loads((out / "report/fifo_sizing.json").read_text())
    assert depths and sizing["depths"] == depths and sizing["throughput_kept"]
    assert (out / "finn_fifo_config.json").is_file()
    df = ModelWrapper(str(out / "dataflow.onnx"))
    from qonnx.custom_op.registry import getCustomOp
    sized = [getCustomOp(n).get_nodeattr("inFIFODepths") for n in df.graph.node
             if n.name in {e.split("__", 1)[1] for e in depths}]
    assert sized and all(max(d) >= 2 for d in sized)
    times = json.loads((out / "report/time_per_step.json").read_text())
    assert set(times) >= {"prepare", "streamline", "convert_to_hw", "folding", "estimates"}


def test_python_execution_is_bit_exact_at_every_stage(cnv_build):
    out, _ = cnv_build
    ver = json.loads((out / "report/verification.json").read_text())
    assert set(ver) == {"prepare", "streamline", "convert_to_hw", "dataflow_partition"}
    assert all(v["bit_exact"] and v["n"] == 12 for v in ver.values())


def test_every_node_is_hardware_with_one_mvau_per_branch(cnv_build):
    out, _ = cnv_build
    parent = ModelWrapper(str(out / "parent.onnx"))
    assert [n.op_type for n in parent.graph.node] == ["Transpose", "StreamingDataflowPartition"]
    df = ModelWrapper(str(out / "dataflow.onnx"))
    assert all(n.domain.startswith("finn.custom_op.fpgadataflow") for n in df.graph.node)
    # test_groupnet_cnv, K=2: {conv1}, {conv2, conv3}, {conv4, conv5}, {fc0, fc1}
    assert summary(df) == {"groups": 4, "branches": {0: 2, 1: 2, 2: 2, 3: 2},
                           "mvaus_per_branch": {0: [1], 1: [2], 2: [2], 3: [2]}}
    ops = [base_op(n.op_type) for n in df.graph.node]
    assert ops.count("DuplicateStreams") == 4 and ops.count("ElementwiseAdd") == 4


def test_estimates_report(cnv_build):
    out, _ = cnv_build
    est = json.loads((out / "report/estimates.json").read_text())
    for key in ("fps", "latency_us", "clock_mhz", "lut", "bram18", "dsp", "layers"):
        assert key in est
    assert est["clock_mhz"] == 100.0 and est["fps"] == pytest.approx(1e8 / est["max_cycles"])
    mvaus = [r for r in est["layers"] if r["op_type"].startswith("MVAU")]
    branch = [r for r in mvaus if r["role"] == "branch"]
    assert len(branch) == 14 and {r["branch"] for r in branch} == {0, 1}
    assert all("group" in r and "branch" in r and r["cycles"] > 0 for r in est["layers"])
    # FINN estimates these at 0 LUT; the report must not
    for kind in ("DuplicateStreams", "ElementwiseAdd", "Pool"):
        rows = [r for r in est["layers"] if base_op(r["op_type"]) == kind]
        assert rows and all(r["lut"] > 0 and r["estimator"] == "groupnet" for r in rows)
    assert est["lut"] == sum(r["lut"] for r in est["layers"])
    assert est["lut"] <= 0.7 * BOARDS["pynq-z2"].lut      # the default budget


def test_existing_build_is_not_overwritten(cnv_build, exported):
    out, _ = cnv_build
    with pytest.raises(BuildError, match="--force"):
        run_build(BuildConfig(model=str(exported("test_groupnet_cnv")), out=str(out)),
                  progress=False)


def test_resume_from_a_step_gives_the_same_build(cnv_build, tmp_path, exported):
    out, _ = cnv_build
    cfg = BuildConfig(model=str(exported("test_groupnet_cnv")), out=str(tmp_path / "r"),
                      to_step="streamline")
    assert run_build(cfg, progress=False)["state"] == "complete"
    assert not (tmp_path / "r" / "report" / "estimates.json").exists()
    cfg = BuildConfig(model=cfg.model, out=cfg.out, from_step="convert_to_hw",
                      to_step="estimates")
    run_build(cfg, progress=False)
    a = json.loads((out / "report/estimates.json").read_text())
    b = json.loads((tmp_path / "r" / "report/estimates.json").read_text())
    assert a["layers"] == b["layers"] and a["fps"] == b["fps"]
    # a resume may not change the part or the clock the earlier steps used
    for change in ({"board": "zcu104"}, {"clock_mhz": 150.0}):
        with pytest.raises(BuildError, match="a resumed build cannot change to"):
            run_build(BuildConfig(model=cfg.model, out=cfg.out, from_step="folding",
                                  to_step="estimates", **change), progress=False)


def test_build_opens_as_a_typed_object(cnv_build):
    from groupnet.hw.boards import get_board
    from groupnet.hw.build import Build
    out, _ = cnv_build
    build = Build.open(out)
    assert build.board == get_board("pynq-z2") and build.clock_mhz == 100.0
    assert build.config.board == "pynq-z2" and isinstance(build.config.steps, tuple)
    assert build.estimates()["fps"] > 0 and build.dataflow().graph.node
    assert build.fifo_depths() == json.loads((out / "fifo_depths.json").read_text())
    import os
    before = os.environ.get("FINN_BUILD_DIR")
    with build:
        assert os.environ["FINN_BUILD_DIR"] == str((out / "finn_tmp").resolve())
    assert os.environ.get("FINN_BUILD_DIR") == before        # restored
    with pytest.raises(BuildError, match="no build here"):
        Build.open(out / "nowhere")


def test_residual_groupnet_builds_bit_exact(exported, images, tmp_path):
    status = run_build(BuildConfig(model=str(exported("test_groupnet_resnet")),
                                   out=str(tmp_path / "res"), verify=True, to_step="estimates"),
                       images, progress=False)
    assert status["state"] == "complete"
    ver = json.loads((tmp_path / "res" / "report/verification.json").read_text())
    assert all(v["bit_exact"] for v in ver.values())
    df = ModelWrapper(str(tmp_path / "res" / "dataflow.onnx"))
    assert all(n.domain.startswith("finn.custom_op.fpgadataflow") for n in df.graph.node)
    assert summary(df)["groups"] == 3


def test_float_model_is_refused_with_the_node(exported, tmp_path):
    path = exported("fp_cnv", width=1 / 16)
    with pytest.raises(GraphError, match=r"node Relu_\d+ \(Relu\): no FINN hardware layer") as err:
        run_build(BuildConfig(model=str(path), out=str(tmp_path / "fp"), to_step="estimates"),
                  progress=False)
    assert "quantiz" in str(err.value)
    status = json.loads((tmp_path / "fp" / "report" / "status.json").read_text())
    assert status["state"] == "failed"
    assert not (tmp_path / "fp" / "report" / "estimates.json").exists()
    assert not (tmp_path / "fp" / "dataflow.onnx").exists()


def test_bad_requests(tmp_path, exported):
    with pytest.raises(BuildError, match="model file not found"):
        run_build(BuildConfig(model=str(tmp_path / "nope.onnx"), out=str(tmp_path / "o")))
    with pytest.raises(BuildError, match="unknown step 'synth'"):
        run_build(BuildConfig(model=str(exported("test_bnn_cnv")), out=str(tmp_path / "o"),
                              to_step="synth"))
    with pytest.raises(BuildError, match="budget"):
        run_build(BuildConfig(model=str(exported("test_bnn_cnv")), out=str(tmp_path / "o"),
                              budget=1.5))


@pytest.mark.slow
def test_cifar10_shaped_groupnet_builds(tmp_path):
    """3x32x32 input (CNV without input padding); random images stand in for CIFAR-10,
    which no package ships (bit-exactness does not depend on the image content)."""
    import torch

    from groupnet.models import create_model
    from groupnet.models.export import export_qonnx

    from ..conftest import quick_fit
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (256, 3, 32, 32), dtype=np.uint8)
    torch.manual_seed(0)
    model = quick_fit(create_model("test_groupnet_cnv", dataset="cifar10"), x,
                      rng.integers(0, 10, 256), steps=2)
    path = export_qonnx(model, tmp_path / "c.onnx")
    status = run_build(BuildConfig(model=str(path), out=str(tmp_path / "b"), verify=True,
                                   to_step="estimates"), x[:6], progress=False)
    ver = json.loads((tmp_path / "b" / "report/verification.json").read_text())
    assert status["state"] == "complete" and all(v["bit_exact"] for v in ver.values())


@pytest.mark.vivado
@pytest.mark.skipif(NO_VIVADO, reason="needs Vivado + Vitis HLS on PATH: "
                                      + toolchain().why_missing())
def test_full_vivado_build(exported, tmp_path):   # untested here: no Vivado on this machine
    status = run_build(BuildConfig(model=str(exported("test_bnn_cnv")), out=str(tmp_path / "v")),
                       progress=False)
    assert status["state"] == "complete"
    assert list((tmp_path / "v" / "finn").rglob("*.bit"))


def test_unshared_branch_scales_are_refused(tmp_path, fmnist_train_small):
    """Summing real-valued branch outputs (no shared quantizer) is not integer hardware."""
    import torch

    from groupnet.models import create_model
    from groupnet.models.export import export_qonnx

    from ..conftest import quick_fit
    model = create_model("test_groupnet_cnv")
    model.body[1].aggregate = torch.nn.Identity()    # group 1 sums float BN outputs
    model = quick_fit(model, *fmnist_train_small, steps=2)
    path = export_qonnx(model, tmp_path / "float_sum.onnx")
    with pytest.raises(GraphError, match=r"node \S+ .*(FLOAT32|float constant)"):
        run_build(BuildConfig(model=str(path), out=str(tmp_path / "b"), to_step="estimates"),
                  progress=False)


def test_unsupported_op_is_named(exported, tmp_path):
    """A node without a FINN hardware layer fails convert_to_hw with its name."""
    import onnx
    from onnx import helper as oh
    src = onnx.load(str(exported("test_bnn_cnv")))
    out = src.graph.output[0].name
    scale = next(n for n in src.graph.node if out in n.output)    # the logit scale Mul
    scale.input[0], old = "soft", scale.input[0]
    src.graph.node.append(oh.make_node("Softsign", [old], ["soft"], name="my_softsign"))
    path = tmp_path / "softsign.onnx"
    onnx.save(src, str(path))
    with pytest.raises(GraphError, match="my_softsign|Softsign"):
        run_build(BuildConfig(model=str(path), out=str(tmp_path / "b"), to_step="estimates"),
                  progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("name, overrides", [
    ("test_groupnet_cnv", {"decomposition": "layer", "k": 3}),
    ("test_groupnet_resnet", {"k": 1}),
])
def test_more_variants_map_to_hardware_bit_exact(name, overrides, exported, images, tmp_path):
    status = run_build(BuildConfig(model=str(exported(name, **overrides)), out=str(tmp_path / "b"),
                                   verify=True, to_step="estimates"), images, progress=False)
    assert status["state"] == "complete"
    ver = json.loads((tmp_path / "b" / "report/verification.json").read_text())
    assert all(v["bit_exact"] for v in ver.values())
    df = ModelWrapper(str(tmp_path / "b" / "dataflow.onnx"))
    assert all(n.domain.startswith("finn.custom_op.fpgadataflow") for n in df.graph.node)


def test_vivado_path_config_is_built_from_the_board(cnv_build):
    """The FINN config handed to FINN's Vivado steps (which cannot run here)."""
    from pathlib import Path

    from groupnet.hw.boards import get_board
    from groupnet.hw.build import BuildContext, BuildPaths
    out, _ = cnv_build
    ctx = BuildContext(BuildConfig(model="m.onnx", out=str(out)), get_board("kv260"),
                       BuildPaths(Path(out)), 150.0)
    cfg = ctx.finn_config()
    assert (cfg.board, cfg.fpga_part) == ("KV260_SOM", "xck26-sfvc784-2LV-c")
    assert cfg.synth_clk_period_ns == pytest.approx(1e3 / 150.0)
    assert cfg.auto_fifo_depths == (not (Path(out) / "fifo_depths.json").exists())


def test_an_estimator_failure_names_the_layer(cnv_build, monkeypatch):
    """A layer FINN cannot estimate is an error naming it, never 0 LUT (which the budget
    search would count as fitting)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from groupnet.hw.boards import get_board
    from groupnet.hw.estimates import EstimateError, layer_estimates
    out, _ = cnv_build
    model = ModelWrapper(str(out / "dataflow.onnx"))
    victim = next(n for n in model.graph.node if n.op_type.startswith("MVAU"))
    cls = type(getCustomOp(victim))

    def broken(self, part):
        raise ValueError("no model for this configuration")
    monkeypatch.setattr(cls, "node_res_estimation", broken)
    with pytest.raises(EstimateError, match=rf"node {victim.name} \(MVAU.*no model for this"):
        layer_estimates(model, get_board("pynq-z2"))
