import gzip

import numpy as np
import pytest

from groupnet.models.data import DatasetError, holdout_indices, load_dataset, read_idx


def test_fashion_mnist_real_files(fmnist_test):
    images, labels = fmnist_test
    assert images.shape == (10000, 1, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [1000] * 10      # the real test set is balanced
    assert images.max() == 255 and images.min() == 0


def test_train_split_and_limit():
    images, labels = load_dataset("fashion-mnist", "train", limit=100)
    assert images.shape == (100, 1, 28, 28) and labels.shape == (100,)


def test_validation_split_is_held_out_of_the_training_set():
    full, full_labels = load_dataset("fashion-mnist", "trainval")
    train, train_labels = load_dataset("fashion-mnist", "train")
    val, val_labels = load_dataset("fashion-mnist", "val")
    assert len(full) == 60000 and len(train) == 55000 and len(val) == 5000
    train_idx, val_idx = holdout_indices(60000, "fashion-mnist")
    assert not set(train_idx.tolist()) & set(val_idx.tolist())
    assert np.array_equal(train, full[train_idx]) and np.array_equal(val, full[val_idx])
    assert np.array_equal(val_labels, full_labels[val_idx])
    # fixed: the same images on every call (the first held-out indices, ascending)
    assert np.array_equal(holdout_indices(60000, "fashion-mnist")[1], val_idx)
    assert np.all(np.diff(val_idx) > 0) and np.bincount(val_labels).min() > 400
    assert np.array_equal(load_dataset("fashion-mnist", "val", limit=7)[0], val[:7])


def test_scene_splits_are_built_from_their_own_items(monkeypatch, tmp_path):
    """val scenes compose held-out training items only; trainval is the old train split."""
    from groupnet.models import scenes
    monkeypatch.setenv("GROUPNET_CACHE", str(tmp_path))
    monkeypatch.setitem(scenes.SCENE_COUNTS, "val", 3)
    seen = {}

    def fake_generate(items, labels, n, seed, progress=True):
        seen[seed] = len(items)
        return np.zeros((n, 1, 64, 64), np.uint8), np.zeros((n, 64, 64), np.uint8)

    monkeypatch.setattr(scenes, "generate_scenes", fake_generate)
    images, masks = load_dataset("fashion-mnist-scenes", "val")
    assert len(images) == 3 and seen == {scenes.SCENE_SEEDS["val"]: 5000}
    assert (tmp_path / "scenes").is_dir()


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
        load_dataset("fashion-mnist", "validation")
