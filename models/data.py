"""Datasets as uint8 NCHW arrays, read from the files users already have.

Every loader returns ``(images, labels)``: ``images`` is ``uint8`` of shape
``(N, C, H, W)`` with raw pixel values 0..255 (the form the exported model and the
accelerator take); for classification ``labels`` is ``int64`` of shape ``(N,)``, for
segmentation (``DatasetInfo.task``) a ``uint8`` class mask per image, ``(N, H, W)``, with
255 = void (ignored).

Supported datasets (name -> where the files come from):

- ``fashion-mnist``: IDX files of the Debian package ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist``), or any folder with the same four files.
- ``mnist``: the four IDX files (``train-images-idx3-ubyte[.gz]`` ...) in a user folder.
- ``cifar10``: the standard "python version" batches (``data_batch_1..5``,
  ``test_batch``) in a user folder, or its ``cifar-10-batches-py`` subfolder.
- ``fashion-mnist-scenes`` (segmentation): 64x64 scenes composed from real Fashion-MNIST
  items, built once and cached (``scenes.py``; synthetic layouts).
- ``voc2012`` (segmentation): a PASCAL VOC 2012-style folder, resized to 128x128.
- ``fashion-mnist-boxes``, ``voc-detection``, ``coco`` (detection, ``detection_data.py``):
  labels are an object array of per-image (n, 5) float32 boxes ``x0, y0, x1, y1, class``.

Splits (``SPLITS``): ``train`` and ``val`` are the two parts of the dataset's training set,
``val`` held out with a fixed seed (:func:`holdout_indices`: 5,000 of Fashion-MNIST's
60,000 training images; the generated scene datasets build their ``val`` scenes from the
held-out items only); ``test`` is the test set; ``trainval`` is the whole training set
(what ``train`` was before the validation protocol, docs/models.md "Validation protocol").

A missing or corrupt file raises :class:`DatasetError` with one line naming the path and
what to do.
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from groupnet.errors import UserError


class DatasetError(UserError, RuntimeError):
    """A dataset is missing or unreadable (user error: the message says how to fix it)."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    channels: int
    height: int
    width: int
    num_classes: int
    default_root: str | None
    how_to_get: str
    classes: tuple[str, ...]
    task: str = "classification"      # or "segmentation": labels are (H, W) class masks

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


# where Debian's `dataset-fashion-mnist` package installs the IDX files (a package's fixed
# location, not this machine's; GROUPNET_<NAME>_DIR or --data-dir point elsewhere)
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

DATASETS: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", 1, 28, 28, 10, DEBIAN_FASHION_MNIST,
        "install it with `apt-get install dataset-fashion-mnist` (or `make system`), "
        "or pass --data-dir with the four IDX files",
        FASHION_CLASSES),
    "mnist": DatasetInfo(
        "mnist", 1, 28, 28, 10, None,
        "download the four MNIST IDX files (train-images-idx3-ubyte.gz, ...) into a folder "
        "and pass it with --data-dir",
        tuple(str(i) for i in range(10))),
    "cifar10": DatasetInfo(
        "cifar10", 3, 32, 32, 10, None,
        "download 'CIFAR-10 python version' (cifar-10-python.tar.gz), unpack it and pass "
        "the cifar-10-batches-py folder with --data-dir",
        ("airplane", "automobile", "bird", "cat", "deer",
         "dog", "frog", "horse", "ship", "truck")),
    "fashion-mnist-scenes": DatasetInfo(
        "fashion-mnist-scenes", 1, 64, 64, 11, DEBIAN_FASHION_MNIST,
        "it is composed from Fashion-MNIST: install that with `apt-get install "
        "dataset-fashion-mnist` (or `make system`), or pass --data-dir with its IDX files",
        ("background",) + FASHION_CLASSES, task="segmentation"),
    "voc2012": DatasetInfo(
        "voc2012", 3, 128, 128, 21, None,
        "pass --data-dir with a PASCAL VOC 2012 folder (JPEGImages, SegmentationClass, "
        "ImageSets/Segmentation)",
        ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
         "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
         "pottedplant", "sheep", "sofa", "train", "tvmonitor"), task="segmentation"),
    "fashion-mnist-boxes": DatasetInfo(
        "fashion-mnist-boxes", 1, 96, 96, 10, DEBIAN_FASHION_MNIST,
        "it is composed from Fashion-MNIST: install that with `apt-get install "
        "dataset-fashion-mnist` (or `make system`), or pass --data-dir with its IDX files",
        FASHION_CLASSES, task="detection"),
    "voc-detection": DatasetInfo(
        "voc-detection", 3, 128, 128, 20, None,
        "pass --data-dir with a PASCAL VOC folder (Annotations, JPEGImages, ImageSets/Main)",
        ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
         "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
         "sheep", "sofa", "train", "tvmonitor"), task="detection"),
    "coco": DatasetInfo(
        "coco", 3, 128, 128, 80, None,
        "pass --data-dir with a COCO folder (annotations/instances_val2017.json, val2017/)",
        tuple(f"category {i}" for i in range(80)), task="detection"),
}

SPLITS = ("train", "val", "test", "trainval")
# the held-out validation split: how many training images (else VAL_FRACTION of them) and
# the seed of the permutation that picks them; never change these (it would move images
# between the splits of every model trained since)
VAL_SIZES = {"fashion-mnist": 5000, "mnist": 5000, "cifar10": 5000}
VAL_FRACTION = 1 / 12
VAL_SEED = 30
GENERATED = ("fashion-mnist-scenes", "fashion-mnist-boxes")   # val: scenes of held-out items


def holdout_indices(n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices into a training set of ``n`` items, each in ascending order:
    ``VAL_SIZES[name]`` (else ``round(n * VAL_FRACTION)``, at least 1) drawn with
    ``VAL_SEED``; the same for every run, machine and process."""
    n_val = VAL_SIZES.get(name, max(1, round(n * VAL_FRACTION)))
    if not 0 < n_val < n:
        raise DatasetError(f"{name}: {n} training items are too few to hold out {n_val} "
                           "for validation")
    perm = np.random.default_rng(VAL_SEED).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(
            f"unknown dataset '{name}': choose one of {', '.join(DATASETS)}") from None


def _resolve_root(info: DatasetInfo, root: str | os.PathLike | None) -> Path:
    if root is None:
        root = os.environ.get(f"GROUPNET_{info.name.upper().replace('-', '_')}_DIR",
                              info.default_root)
    if root is None:
        raise DatasetError(f"{info.name}: no data folder given; {info.how_to_get}")
    path = Path(root)
    if not path.is_dir():
        raise DatasetError(f"{info.name}: folder {path} does not exist; {info.how_to_get}")
    return path


# ------------------------------------------------------------------------------- IDX
_IDX_DTYPES = {0x08: np.uint8}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) as produced by LeCun's MNIST format."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DatasetError(f"{path}: cannot read IDX file ({err}); re-download it") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file of unsigned bytes (bad magic number); "
                           "re-download it")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DatasetError(f"{path}: truncated or corrupt IDX file ({len(raw)} bytes, "
                           f"header says {expected}); re-download it")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(root: Path, stem: str, info: DatasetInfo) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem,
                      root / f"{stem.replace('-idx', '.idx')}.gz",
                      root / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{info.name}: {root / (stem + '.gz')} not found; {info.how_to_get}")


def _load_idx_pair(info: DatasetInfo, root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte", info))
    labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte", info))
    if images.ndim != 3 or images.shape[1:] != (info.height, info.width):
        raise DatasetError(f"{info.name}: images in {root} have shape {images.shape}, "
                           f"expected (N, {info.height}, {info.width})")
    if labels.shape != (images.shape[0],):
        raise DatasetError(f"{info.name}: {images.shape[0]} images but {labels.shape} "
                           f"labels in {root}; the files do not belong together")
    return images[:, None, :, :].copy(), labels.astype(np.int64)


# ---------------------------------------------------------------------------- CIFAR
def _load_cifar10(info: DatasetInfo, root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for name in names:
        path = root / name
        if not path.is_file():
            raise DatasetError(f"{info.name}: {path} not found; {info.how_to_get}")
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            lab = np.asarray(batch[b"labels"], dtype=np.int64)
        except Exception as err:  # noqa: BLE001 - any unpickling failure is a corrupt file
            raise DatasetError(f"{path}: not a CIFAR-10 python batch ({err}); "
                               "re-download it") from None
        images.append(data)
        labels.append(lab)
    return np.concatenate(images), np.concatenate(labels)


def _load_split(name: str, info: DatasetInfo, path: Path, root, split: str,
                limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """One split as its files hold it: ``trainval`` (the whole training set) or ``test``;
    the generated scene datasets also build ``train`` and ``val`` themselves."""
    files = "train" if split == "trainval" else split      # the loaders' own names
    if name == "cifar10":
        return _load_cifar10(info, path, files)
    if name == "fashion-mnist-scenes":
        from .scenes import load_scenes
        return load_scenes(split, root)
    if name == "voc2012":
        from .scenes import load_voc
        return load_voc(path, files, info.height, limit)
    if info.task == "detection":
        from . import detection_data as dd
        if name == "fashion-mnist-boxes":
            return dd.load_box_scenes(split, root)
        if name == "voc-detection":
            return dd.load_voc_detection(path, files, info.height, limit)
        return dd.load_coco(path, files, info.height, limit)
    return _load_idx_pair(info, path, files)


def load_dataset(name: str, split: str = "test", root: str | os.PathLike | None = None,
                 limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load a split of a dataset as ``(uint8 images NCHW, int64 labels)``.

    ``split``: ``train`` (the training set without the held-out validation images),
    ``val`` (those), ``test``, or ``trainval`` (the whole training set). ``limit`` keeps
    the first N images of the split (test sets are not sorted by class).
    """
    info = dataset_info(name)
    if limit is not None and limit < 1:
        raise DatasetError(f"limit must be a positive number of images, got {limit}")
    if split not in SPLITS:
        raise DatasetError(f"unknown split '{split}': choose one of {', '.join(SPLITS)}")
    path = _resolve_root(info, root)
    if split in ("train", "val") and name not in GENERATED:
        images, labels = _load_split(name, info, path, root, "trainval", None)
        train_idx, val_idx = holdout_indices(len(images), name)
        idx = train_idx if split == "train" else val_idx
        images, labels = images[idx], labels[idx]
    else:
        images, labels = _load_split(name, info, path, root, split, limit)
    if info.task == "detection":
        valid = np.concatenate([b[:, 4] for b in labels]) if len(labels) else labels
    else:
        valid = labels[labels != 255] if info.task == "segmentation" else labels
    if valid.size and (valid.min() < 0 or valid.max() >= info.num_classes):
        raise DatasetError(f"{info.name}: labels in {path} outside 0..{info.num_classes - 1}")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels
