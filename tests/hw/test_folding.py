import json

import pytest
from qonnx.core.modelwrapper import ModelWrapper

from groupnet.hw.build import BuildConfig, run_build
from groupnet.hw.folding import FoldingError


@pytest.fixture(scope="module")
def folded(exported, tmp_path_factory):
    out = tmp_path_factory.mktemp("f") / "b"
    run_build(BuildConfig(model=str(exported("test_bnn_cnv")), out=str(out),
                          to_step="estimates", budget=0.3), progress=False)
    return out


def test_folding_json_roundtrip(folded, exported, tmp_path):
    out = tmp_path / "again"
    run_build(BuildConfig(model=str(exported("test_bnn_cnv")), out=str(out),
                          to_step="estimates", folding=str(folded / "folding.json")),
              progress=False)
    a = json.loads((folded / "report/estimates.json").read_text())
    b = json.loads((out / "report/estimates.json").read_text())
    assert a["layers"] == b["layers"]


def test_bad_pe_names_layer_and_allowed_values(folded, exported, tmp_path):
    df = ModelWrapper(str(folded / "dataflow.onnx"))
    mvau = next(n for n in df.graph.node if n.op_type.startswith("MVAU")
                and n.name != df.graph.node[2].name)
    config = json.loads((folded / "folding.json").read_text())
    config[mvau.name]["PE"] = 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(config))
    with pytest.raises(FoldingError, match=rf"layer {mvau.name}.*PE=3 does not divide its "
                                           r"output channels \(\d+\); allowed PE: 1, 2"):
        run_build(BuildConfig(model=str(exported("test_bnn_cnv")), out=str(tmp_path / "x"),
                              to_step="estimates", folding=str(bad)), progress=False)


def test_unknown_layer_in_folding(exported, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"MVAU_hls_99": {"PE": 1}}))
    with pytest.raises(FoldingError, match="no layer named 'MVAU_hls_99'"):
        run_build(BuildConfig(model=str(exported("test_bnn_cnv")), out=str(tmp_path / "x"),
                              to_step="estimates", folding=str(bad)), progress=False)


def test_target_fps_is_met_with_less_area(exported, tmp_path, folded):
    fast = json.loads((folded / "report/estimates.json").read_text())
    target = fast["fps"] / 8
    run_build(BuildConfig(model=str(exported("test_bnn_cnv")), out=str(tmp_path / "t"),
                          to_step="estimates", target_fps=target), progress=False)
    est = json.loads((tmp_path / "t" / "report/estimates.json").read_text())
    assert est["fps"] >= target
    assert est["lut"] < fast["lut"]


def test_budget_bounds_resources(folded):
    est = json.loads((folded / "report/estimates.json").read_text())
    assert est["utilization"]["lut"] <= 0.3 and est["utilization"]["bram18"] <= 0.3
