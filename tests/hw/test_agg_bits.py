"""Wider aggregation (``agg_bits`` 3 and 4): each branch MVAU emits an INT3/INT4 branch
output, the integer sum widens accordingly, and the accelerator stays bit-exact with the
PyTorch model through the FINN graph, the stitched RTL simulation and the deploy driver."""

import json

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from groupnet.hw.build import BuildConfig, run_build
from groupnet.hw.driver.groupnet_driver import Accelerator
from groupnet.hw.deploy.package import deploy
from groupnet.hw.finn_env import prepare
from groupnet.hw.sim.run import reference_outputs, simulate

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


# 4 (the zoo recipe's) in `make test`, 3 in `make test-all`
@pytest.fixture(scope="module", params=[pytest.param(3, marks=pytest.mark.full), 4])
def agg_build(request, exported, images, tmp_path_factory):
    bits = request.param
    out = tmp_path_factory.mktemp(f"agg{bits}") / "b"
    status = run_build(BuildConfig(model=str(exported("test_groupnet_cnv", agg_bits=bits)),
                                   out=str(out), verify=True, to_step="estimates"),
                       images, progress=False)
    assert status["state"] == "complete"
    prepare(out / "finn_tmp")
    return bits, out


def test_branch_outputs_and_sums_are_agg_bits_wide(agg_build):
    bits, out = agg_build
    df = ModelWrapper(str(out / "dataflow.onnx"))
    branch_mvaus = [n for n in df.graph.node if n.op_type.startswith("MVAU")
                    and getCustomOp(n).get_nodeattr("noActivation") == 0
                    and df.get_tensor_datatype(n.output[0]).bitwidth() == bits]
    assert branch_mvaus, f"no MVAU emits INT{bits}"
    for n in branch_mvaus:
        assert df.get_tensor_datatype(n.output[0]).name == f"INT{bits}"
        # a signed agg_bits-bit output needs 2^bits - 1 thresholds per channel
        assert df.get_initializer(n.input[2]).shape[1] == 2 ** bits - 1
    adds = [n for n in df.graph.node if n.op_type.startswith("ElementwiseAdd")]
    assert adds and all(df.get_tensor_datatype(n.input[0]).bitwidth() >= bits for n in adds)


def test_every_stage_is_bit_exact(agg_build):
    _, out = agg_build
    ver = json.loads((out / "report" / "verification.json").read_text())
    assert ver and all(v["bit_exact"] for v in ver.values())


def test_rtl_simulation_is_bit_exact(agg_build, images):
    _, out = agg_build
    result = simulate(out, images[:6])
    assert result["bit_exact"] and result["frames"] == 6
    assert result["cycles_per_frame"] >= 0.95 * result["bound_cycles_per_frame"]


def test_deploy_driver_is_bit_exact(agg_build, fmnist_test, tmp_path):
    _, out = agg_build
    dep = tmp_path / "deploy"
    deploy(out, dep, fmnist_test[0][:8], fmnist_test[1][:8])
    accel = Accelerator(dep, backend="sim", batch_size=4, verbose=False)
    images = fmnist_test[0][:4]
    np.testing.assert_array_equal(accel.execute(images), reference_outputs(out, images))
