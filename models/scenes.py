"""Segmentation data: scenes composed from real Fashion-MNIST items, and PASCAL VOC folders.

No dataset with masks ships offline, so ``fashion-mnist-scenes`` composes them from the
real Fashion-MNIST images (Debian package ``dataset-fashion-mnist``): 1-4 items per 64x64
canvas, each at a random scale and position; an item's mask is its resized pixels above
:data:`MASK_THRESHOLD`, its label class + 1 (0 is background), and later items occlude
earlier ones. Train scenes use training items only (without the held-out validation
items: ``data.holdout_indices``), val scenes the held-out items only and test scenes test
items only; every scene is fixed by its split's seed, and the arrays are cached on disk (built once, with a
progress bar). The layouts are synthetic: numbers on them are not comparable to VOC.

``voc2012`` reads a PASCAL VOC 2012-style folder a user has (``JPEGImages/*.jpg``,
``SegmentationClass/*.png`` palette masks with 255 = void, ``ImageSets/Segmentation/
{train,val}.txt``), resized to :data:`VOC_SIZE` (images bilinear, masks nearest).

Both return ``(images uint8 (N, C, H, W), masks uint8 (N, H, W))``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

MASK_THRESHOLD = 40       # item pixel value (0..255) above which the pixel belongs to it
SCENE_SIZE = 64
SCENE_ITEMS = (1, 4)      # items per scene, inclusive
SCENE_ITEM_SIZE = (20, 44)  # side of a resized 28x28 item, px, inclusive
# per split (models/data.py SPLITS): train scenes use the training items without the held-out
# validation items, val scenes only those, trainval (the scenes before the validation
# protocol) all training items, test scenes the test items
SCENE_COUNTS = {"train": 20000, "val": 2000, "test": 2000, "trainval": 20000}
SCENE_SEEDS = {"train": 0, "val": 2, "test": 1, "trainval": 0}
SCENE_VERSION = 1         # bump when the generator changes: cached files are keyed by it
IGNORE_INDEX = 255        # void pixels (VOC's boundaries); never in generated scenes
VOC_SIZE = 128


def cache_root() -> Path:
    return Path(os.environ.get("GROUPNET_CACHE", Path.home() / ".cache" / "groupnet"))


def _resize(item: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.fromarray(item).resize((side, side), Image.BILINEAR))


def compose_scene(rng: np.random.Generator, items: np.ndarray, labels: np.ndarray,
                  size: int = SCENE_SIZE, n_items: tuple[int, int] = SCENE_ITEMS,
                  item_size: tuple[int, int] = SCENE_ITEM_SIZE
                  ) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
    """One scene: ``(image uint8 (size, size), instances uint8 (size, size), classes,
    areas)``.

    ``instances`` holds 0 for background and i + 1 for pixels of the i-th item placed
    (later items drawn over earlier ones); ``classes[i]`` is that item's class (0-based)
    and ``areas[i]`` its mask's pixel count before occlusion.
    """
    image = np.zeros((size, size), np.uint8)
    instances = np.zeros((size, size), np.uint8)
    classes, areas = [], []
    for i in range(int(rng.integers(n_items[0], n_items[1] + 1))):
        idx = int(rng.integers(len(items)))
        side = int(rng.integers(item_size[0], min(item_size[1], size) + 1))
        y, x = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        patch = _resize(items[idx], side)
        mask = patch > MASK_THRESHOLD
        image[y:y + side, x:x + side][mask] = patch[mask]
        instances[y:y + side, x:x + side][mask] = i + 1
        classes.append(int(labels[idx]))
        areas.append(int(mask.sum()))
    return image, instances, classes, areas


def semantic_mask(instances: np.ndarray, classes: list[int]) -> np.ndarray:
    """Instance map -> class map (0 background, class + 1 for items)."""
    lut = np.zeros(256, np.uint8)
    lut[1:len(classes) + 1] = np.asarray(classes, np.uint8) + 1
    return lut[instances]


def generate_scenes(items: np.ndarray, labels: np.ndarray, n: int, seed: int,
                    size: int = SCENE_SIZE, progress: bool = True
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` scenes from ``items`` (uint8 (M, 28, 28) or (M, 1, 28, 28)) and their labels."""
    from tqdm.auto import tqdm
    items = items.reshape(len(items), items.shape[-2], items.shape[-1])
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 1, size, size), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    for s in tqdm(range(n), desc=f"composing {n} scenes", disable=not progress, unit="scene",
                  leave=False):
        image, instances, classes, _ = compose_scene(rng, items, labels, size)
        images[s, 0] = image
        masks[s] = semantic_mask(instances, classes)
    return images, masks


def cached_scenes(name: str, split: str, root: str | os.PathLike | None,
                  build) -> dict[str, np.ndarray]:
    """The arrays of a generated split, from ``$GROUPNET_CACHE/scenes/NAME-SPLIT-KEY.npz``
    (KEY: the Fashion-MNIST folder), else ``build(items, labels)`` on the split's real
    Fashion-MNIST items, saved atomically. A damaged cache file is built anew."""
    from .data import load_dataset
    key = hashlib.sha1(f"{root}".encode()).hexdigest()[:8] if root else "default"
    # "trainval" keeps the file name "train" had before the validation split existed
    tag = {"trainval": "train", "train": "train-noval"}.get(split, split)
    path = cache_root() / "scenes" / f"{name}-{tag}-{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as data:
                return dict(data)
        except (OSError, ValueError):
            pass
    arrays = build(*load_dataset("fashion-mnist", split, root))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return arrays


def load_scenes(split: str, root: str | os.PathLike | None = None,
                progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The fixed ``fashion-mnist-scenes`` split, built from Fashion-MNIST once and cached
    under ``$GROUPNET_CACHE`` (default ``~/.cache/groupnet``)."""
    def build(items, labels):
        images, masks = generate_scenes(items, labels, SCENE_COUNTS[split],
                                        SCENE_SEEDS[split], progress=progress)
        return {"images": images, "masks": masks}
    data = cached_scenes(f"fashion-mnist-scenes-v{SCENE_VERSION}", split, root, build)
    return data["images"], data["masks"]


# ------------------------------------------------------------------------------ VOC
def load_voc(root: str | os.PathLike, split: str, size: int = VOC_SIZE,
             limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A PASCAL VOC 2012-style segmentation split (``train`` -> train.txt, ``test`` ->
    val.txt), resized to ``size`` x ``size``."""
    from PIL import Image

    from .data import DatasetError
    root = Path(root)
    if (root / "VOC2012").is_dir():
        root = root / "VOC2012"
    list_file = root / "ImageSets" / "Segmentation" / ("train.txt" if split == "train"
                                                        else "val.txt")
    if not list_file.is_file():
        raise DatasetError(f"voc2012: {list_file} not found; pass --data-dir with a VOC "
                           "2012 folder (JPEGImages, SegmentationClass, ImageSets/Segmentation)")
    names = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    names = names[:limit] if limit else names
    if not names:
        raise DatasetError(f"voc2012: {list_file} lists no images")
    images = np.zeros((len(names), 3, size, size), np.uint8)
    masks = np.zeros((len(names), size, size), np.uint8)
    for i, name in enumerate(names):
        img_path = root / "JPEGImages" / f"{name}.jpg"
        mask_path = root / "SegmentationClass" / f"{name}.png"
        for p in (img_path, mask_path):
            if not p.is_file():
                raise DatasetError(f"voc2012: {p} not found (listed in {list_file})")
        try:
            img = Image.open(img_path).convert("RGB")
            mask = Image.open(mask_path)
            if mask.mode not in ("P", "L"):
                raise DatasetError(f"voc2012: {mask_path} is a {mask.mode} image, not a "
                                   "palette mask of class indices")
            images[i] = np.asarray(img.resize((size, size), Image.BILINEAR)).transpose(2, 0, 1)
            masks[i] = np.asarray(mask.resize((size, size), Image.NEAREST))
        except (OSError, SyntaxError) as err:
            raise DatasetError(f"voc2012: cannot read {img_path.name}/{mask_path.name} "
                               f"({err})") from None
    bad = masks[(masks != IGNORE_INDEX) & (masks > 20)]
    if bad.size:
        raise DatasetError(f"voc2012: masks in {root / 'SegmentationClass'} hold class "
                           f"{int(bad[0])}; VOC has classes 0..20 and 255 (void)")
    return images, masks
