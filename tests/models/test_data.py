import gzip

import numpy as np
import pytest

from groupnet.models.data import DatasetError, load_dataset, read_idx


def test_fashion_mnist_real_files(fmnist_test):
    images, labels = fmnist_test
    assert images.shape == (10000, 1, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [1000] * 10      # the real test set is balanced
    assert images.max() == 255 and images.min() == 0


def test_train_split_and_limit():
    images, labels = load_dataset("fashion-mnist", "train", limit=100)
    assert images.shape == (100, 1, 28, 28) and labels.shape == (100,)


def test_missing_folder_names_path_and_fix(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError, match=str(missing)) as err:
        load_dataset("mnist", "test", missing)
    assert "--data-dir" in str(err.value)


def test_missing_file_in_folder(tmp_path):
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte"):
        load_dataset("mnist", "test", tmp_path)


def test_mnist_without_folder_says_how_to_get_it(monkeypatch):
    monkeypatch.delenv("GROUPNET_MNIST_DIR", raising=False)
    with pytest.raises(DatasetError, match="no data folder given"):
        load_dataset("mnist", "test")


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_folder_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (7, 28, 28))
    labs = rng.integers(0, 10, 7)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labs)
    x, y = load_dataset("mnist", "test", tmp_path)
    assert (x[:, 0] == imgs).all() and (y == labs).all()


def test_corrupt_idx_is_reported(tmp_path):
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x00\x00\x08\x03" + (10).to_bytes(4, "big") + b"\x00" * 20)
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        read_idx(bad)
    (tmp_path / "x.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(tmp_path / "x.gz")


def test_cifar10_python_batches(tmp_path):
    import pickle
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = rng.integers(0, 256, (5, 3072), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": data, b"labels": [0, 1, 2, 3, 9]}, f)
    x, y = load_dataset("cifar10", "test", tmp_path)
    assert x.shape == (5, 3, 32, 32) and (x.reshape(5, -1) == data).all()
    assert y.tolist() == [0, 1, 2, 3, 9]
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a CIFAR-10 python batch"):
        load_dataset("cifar10", "test", tmp_path)


def test_unknown_dataset_and_split():
    with pytest.raises(DatasetError, match="unknown dataset 'svhn'"):
        load_dataset("svhn")
    with pytest.raises(DatasetError, match="unknown split"):
        load_dataset("fashion-mnist", "val")
