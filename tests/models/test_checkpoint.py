import pytest
import torch

from groupnet.models import create_model
from groupnet.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_roundtrip_rebuilds_variant_and_weights(tiny_trained, fmnist_test, tmp_path):
    model = tiny_trained("test_groupnet_cnv", k=3)
    path = save_checkpoint(tmp_path / "m.pt", model, {"test_accuracy": 0.5})
    loaded, payload = load_checkpoint(path)
    assert payload["variant"] == "test_groupnet_cnv" and payload["config"]["k"] == 3
    x = torch.from_numpy(fmnist_test[0][:50]).float()
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_wrong_variant_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", create_model("test_bnn_cnv"))
    with pytest.raises(CheckpointError, match="trained as 'test_bnn_cnv', not 'bnn_cnv'"):
        load_checkpoint(path, variant="bnn_cnv")


def test_weights_that_do_not_fit(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", create_model("test_groupnet_cnv", k=2))
    payload = torch.load(path, weights_only=False)
    payload["config"]["k"] = 3                       # claims 3 branches, has weights for 2
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not fit variant 'test_groupnet_cnv'"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a groupnet checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_compact_zoo_checkpoint_computes_the_same(tmp_path, tiny_trained):
    """Binary weights stored as int8 signs: identical outputs, and its QONNX export (which
    keeps the latent weights under a quantizer node) computes the same scores."""
    import numpy as np

    from groupnet.models.checkpoint import compact_checkpoint, load_checkpoint, save_checkpoint
    from groupnet.models.export import execute_qonnx, export_qonnx
    model = tiny_trained("test_groupnet_cnv")
    full = save_checkpoint(tmp_path / "full.pt", model)
    small = compact_checkpoint(full, tmp_path / "small.pt")
    a, _ = load_checkpoint(full)
    b, payload = load_checkpoint(small)
    assert payload["binary_weights_int8"]
    x = torch.randint(0, 256, (16, 1, 28, 28)).float()
    assert torch.equal(a(x), b(x))
    images = x[:6].numpy().astype(np.uint8)
    np.testing.assert_array_equal(execute_qonnx(export_qonnx(a, tmp_path / "a.onnx"), images),
                                  execute_qonnx(export_qonnx(b, tmp_path / "b.onnx"), images))
