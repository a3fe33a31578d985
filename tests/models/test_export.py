"""Export parity: QONNX execution must equal the PyTorch model exactly on real images."""

import json

import pytest

from groupnet.models import create_model, list_models, model_defaults
from groupnet.models.export import ExportError, export_qonnx, read_metadata, verify_export

from ..conftest import quick_fit, set_gates


@pytest.mark.parametrize("name", ["test_groupnet_cnv", "test_bnn_cnv", "test_groupnet_resnet",
                                  "test_cnv_w1a2", "test_cnv_w2a2", "test_abc_cnv"])
def test_parity_tiny_trained(name, tiny_trained, fmnist_test, tmp_path):
    model = tiny_trained(name)
    path = export_qonnx(model, tmp_path / f"{name}.onnx")
    result = verify_export(path, model, fmnist_test[0][:300])
    assert result["bit_exact"], result
    assert result["max_abs_diff"] == 0.0


def test_parity_layerwise(tiny_trained, fmnist_test, tmp_path):
    model = tiny_trained("test_groupnet_cnv", decomposition="layer", k=3)
    path = export_qonnx(model, tmp_path / "m.onnx")
    assert verify_export(path, model, fmnist_test[0][:100])["bit_exact"]


# the classifiers (segmentation and detection nets have their parity tests in
# test_segmentation.py / test_detection.py, on their own data)
CLASSIFIERS = [n for n in list_models() if model_defaults(n).get("dataset") == "fashion-mnist"]
BINARY = [n for n in CLASSIFIERS if not n.startswith("fp_")]
FLOAT = [n for n in CLASSIFIERS if n.startswith("fp_")]


@pytest.mark.slow
@pytest.mark.full           # `make test`: test_parity_tiny_trained, one model per family
@pytest.mark.parametrize("name", BINARY)
def test_parity_every_binary_variant(name, fmnist_train_small, fmnist_test, tmp_path):
    model = quick_fit(create_model(name), *fmnist_train_small, steps=2, batch=32)
    path = export_qonnx(model, tmp_path / f"{name}.onnx")
    result = verify_export(path, model, fmnist_test[0][:20])
    assert result["bit_exact"], result


@pytest.mark.slow
@pytest.mark.parametrize("name", FLOAT)
def test_float_reference_export_agrees(name, fmnist_train_small, fmnist_test, tmp_path):
    """The full-precision reference is no hardware model: float convolutions differ in
    the last bits between PyTorch and onnxruntime, so it is checked for agreement (same
    predictions, tiny differences), not bit-exactness."""
    model = quick_fit(create_model(name), *fmnist_train_small, steps=2, batch=32)
    path = export_qonnx(model, tmp_path / f"{name}.onnx")
    result = verify_export(path, model, fmnist_test[0][:20])
    assert result["predictions_equal"] and result["max_abs_diff"] < 1e-3, result


def test_graph_is_qonnx_with_binary_ops(tiny_trained, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper
    path = export_qonnx(tiny_trained("test_groupnet_cnv"), tmp_path / "m.onnx")
    model = ModelWrapper(str(path))
    ops = {n.op_type for n in model.graph.node}
    assert {"BipolarQuant", "Quant", "Conv", "Add"} <= ops
    assert model.get_tensor_shape(model.graph.input[0].name) == [1, 1, 28, 28]
    assert model.get_tensor_shape(model.graph.output[0].name) == [1, 10]


def test_metadata(tiny_trained, tmp_path):
    path = export_qonnx(tiny_trained("test_groupnet_cnv", k=3), tmp_path / "m.onnx",
                        metrics={"test_accuracy": 0.5})
    meta = read_metadata(path)
    assert meta["groupnet.variant"] == "test_groupnet_cnv"
    assert meta["groupnet.k"] == "3"
    assert meta["groupnet.dataset"] == "fashion-mnist"
    assert json.loads(meta["groupnet.input_shape"]) == [1, 1, 28, 28]
    assert "0..255" in meta["groupnet.input_preprocessing"]
    assert json.loads(meta["groupnet.metrics.test_accuracy"]) == 0.5
    assert json.loads(meta["groupnet.config"])["k"] == 3


def test_no_silent_overwrite(tiny_trained, tmp_path):
    model = tiny_trained("test_bnn_cnv")
    path = export_qonnx(model, tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="--force"):
        export_qonnx(model, path)
    export_qonnx(model, path, force=True)


def test_verify_detects_a_mismatch(tiny_trained, fmnist_test, tmp_path):
    model = tiny_trained("test_bnn_cnv")
    path = export_qonnx(model, tmp_path / "m.onnx")
    model.head.scale.data *= 2.0          # the PyTorch model no longer matches the file
    result = verify_export(path, model, fmnist_test[0][:10])
    assert not result["bit_exact"] and result["max_abs_diff"] > 0


def test_parity_soft_gates_at_every_level(tiny_trained, fmnist_test, tmp_path):
    """Gates at 0 (sign of the sum), 1/2 (sign of branch + sum) and 1 (own branch) in one
    model: the export holds each form and stays bit-exact."""
    model = tiny_trained("test_groupnet_cnv_sg", k=3)
    gates = set_gates(model, [0, 1, 2])
    model.eval()
    assert sorted({g.frozen for g in gates}) == [0, 1, 2]
    path = export_qonnx(model, tmp_path / "sg.onnx")
    assert verify_export(path, model, fmnist_test[0][:200])["bit_exact"]


def test_abc_export_has_one_binary_layer_per_base_pair(tiny_trained, fmnist_test, tmp_path):
    """M x N binary convs each with its own weight quantizer (FINN refuses shared ones)."""
    from qonnx.core.modelwrapper import ModelWrapper
    model = tiny_trained("test_abc_cnv", m=3, n=2)
    path = export_qonnx(model, tmp_path / "abc.onnx")
    assert verify_export(path, model, fmnist_test[0][:50])["bit_exact"]
    wrapped = ModelWrapper(str(path))
    convs = [n for n in wrapped.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    assert len(convs) == 1 + 8 * 6
    for node in wrapped.graph.node:
        if node.op_type == "BipolarQuant" and wrapped.get_initializer(node.input[0]) is not None:
            assert len(wrapped.find_consumers(node.output[0])) == 1
