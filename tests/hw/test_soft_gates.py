"""Soft-gated connections between groups through the whole hardware flow: a tiny K=3
Group-Net whose gates sit at all three levels (sign of the sum, of branch + sum, of the
branch alone) builds to an all-HW dataflow graph, bit-exact at every verified step and in
the stitched RTL simulation."""

import json
from collections import Counter

import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper

from groupnet.hw.build import BuildConfig, run_build
from groupnet.hw.finn_env import prepare
from groupnet.models import create_model
from groupnet.models.export import export_qonnx

from ..conftest import quick_fit, set_gates

K = 3
GATED_GROUPS = 3            # conv1, conv2-3, conv4-5 feed the next group through gates


@pytest.fixture(scope="module")
def gated_build(fmnist_train_small, images, tmp_path_factory):
    torch.manual_seed(0)
    model = quick_fit(create_model("test_groupnet_cnv_sg", k=K), *fmnist_train_small)
    set_gates(model, [0, 1, 2])
    folder = tmp_path_factory.mktemp("sg")
    path = export_qonnx(model.eval(), folder / "sg.onnx")
    out = folder / "build"
    status = run_build(BuildConfig(model=str(path), out=str(out), verify=True,
                                   to_step="estimates"), images, progress=False)
    prepare(out / "finn_tmp")
    return out, status


def test_gates_map_to_adds_and_thresholds_only(gated_build):
    out, status = gated_build
    assert status["state"] == "complete"
    ver = json.loads((out / "report/verification.json").read_text())
    assert ver and all(v["bit_exact"] for v in ver.values())
    ops = Counter(n.op_type.rsplit("_", 1)[0]
                  for n in ModelWrapper(str(out / "dataflow.onnx")).graph.node)
    assert set(ops) == {"FMPadding", "ConvolutionInputGenerator", "MVAU", "DuplicateStreams",
                        "ElementwiseAdd", "Thresholding", "Pool"}
    # per gated group: K-1 adds for the sum + 1 for the g = 1/2 gate, and three signs
    # (of the sum, of branch + sum, of the branch); the last group: K-1 adds, one sign
    assert ops["ElementwiseAdd"] == GATED_GROUPS * K + (K - 1)
    assert ops["Thresholding"] == GATED_GROUPS * 3 + 1


@pytest.mark.verilator
def test_gated_accelerator_is_bit_exact_in_rtl_simulation(gated_build, images):
    from groupnet.hw.sim.run import simulate, size_fifos
    out, _ = gated_build
    assert simulate(out, images[:3], fifo_depths={})["bit_exact"]
    sizing = size_fifos(out, images[:6])
    assert sizing["throughput_kept"]
    result = simulate(out, images[:8])                   # with the sized FIFOs
    assert result["bit_exact"] and result["frames"] == 8
    assert result["cycles_per_frame"] <= 1.05 * result["bound_cycles_per_frame"]
