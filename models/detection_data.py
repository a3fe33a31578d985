"""Detection data: boxes on scenes of real Fashion-MNIST items, PASCAL VOC and COCO folders.

Every loader returns ``(images uint8 (N, C, H, W), boxes)`` where ``boxes`` is an object
array of N float32 arrays of shape (n_i, 5): ``x0, y0, x1, y1, class`` in pixels of the
returned image (x1, y1 exclusive) with 0-based classes.

- ``fashion-mnist-boxes``: the segmentation scenes' generator (``scenes.compose_scene``) on a
  96x96 canvas, 1-5 items; each item's box is the bounding box of its *visible* pixels, and
  an item with less than :data:`MIN_VISIBLE` of its pixels visible is dropped (it stays in
  the picture, unlabelled, like an ignored object). Train scenes from training items, val
  scenes from the held-out validation items, test scenes from test items, fixed by seed,
  cached. Synthetic layouts.
- ``voc-detection``: a PASCAL VOC folder (``Annotations/*.xml``, ``JPEGImages``,
  ``ImageSets/Main/{train,val}.txt``), resized to 128x128, "difficult" objects left out.
- ``coco``: a COCO folder (``annotations/instances_{train,val}2017.json`` and the
  ``{train,val}2017/`` images), resized to 128x128, crowd boxes left out, category ids
  mapped to 0..79 in id order.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from .scenes import cached_scenes, compose_scene

BOX_SCENE_SIZE = 96
BOX_SCENE_ITEMS = (1, 5)
BOX_COUNTS = {"train": 12000, "val": 2000, "test": 2000, "trainval": 12000}   # as scenes.py's
BOX_SEEDS = {"train": 10, "val": 12, "test": 11, "trainval": 10}
BOX_VERSION = 1
MIN_VISIBLE = 0.5
DET_SIZE = 128
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")


def boxes_of(instances: np.ndarray, classes: list[int], areas: list[int]) -> np.ndarray:
    """(n, 5) boxes of the items visible enough in an instance map."""
    out = []
    for i, (cls, area) in enumerate(zip(classes, areas)):
        ys, xs = np.nonzero(instances == i + 1)
        if len(ys) < MIN_VISIBLE * area or not len(ys):
            continue
        out.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, cls))
    return np.asarray(out, np.float32).reshape(-1, 5)


def generate_box_scenes(items: np.ndarray, labels: np.ndarray, n: int, seed: int,
                        size: int = BOX_SCENE_SIZE, progress: bool = True
                        ) -> tuple[np.ndarray, np.ndarray]:
    from tqdm.auto import tqdm
    items = items.reshape(len(items), items.shape[-2], items.shape[-1])
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 1, size, size), np.uint8)
    boxes = np.empty(n, dtype=object)
    for s in tqdm(range(n), desc=f"composing {n} scenes with boxes", disable=not progress,
                  unit="scene", leave=False):
        image, instances, classes, areas = compose_scene(rng, items, labels, size,
                                                         n_items=BOX_SCENE_ITEMS)
        images[s, 0] = image
        boxes[s] = boxes_of(instances, classes, areas)
    return images, boxes


def _pack(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts = np.asarray([len(b) for b in boxes], np.int64)
    flat = np.concatenate(list(boxes)) if len(boxes) else np.zeros((0, 5), np.float32)
    return flat.astype(np.float32), counts


def _unpack(flat: np.ndarray, counts: np.ndarray) -> np.ndarray:
    out = np.empty(len(counts), dtype=object)
    ends = np.cumsum(counts)
    for i, (a, b) in enumerate(zip(ends - counts, ends)):
        out[i] = flat[a:b]
    return out


def load_box_scenes(split: str, root: str | os.PathLike | None = None,
                    progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The fixed ``fashion-mnist-boxes`` split, built once and cached."""
    def build(items, labels):
        images, boxes = generate_box_scenes(items, labels, BOX_COUNTS[split],
                                            BOX_SEEDS[split], progress=progress)
        flat, counts = _pack(boxes)
        return {"images": images, "boxes": flat, "counts": counts}
    data = cached_scenes(f"fashion-mnist-boxes-v{BOX_VERSION}", split, root, build)
    return data["images"], _unpack(data["boxes"], data["counts"])


def _resized(path: Path, size: int) -> tuple[np.ndarray, float, float]:
    from PIL import Image
    img = Image.open(path).convert("RGB")
    sx, sy = size / img.width, size / img.height
    return np.asarray(img.resize((size, size), Image.BILINEAR)).transpose(2, 0, 1), sx, sy


def load_voc_detection(root: str | os.PathLike, split: str, size: int = DET_SIZE,
                       limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    from .data import DatasetError
    root = Path(root)
    if (root / "VOC2012").is_dir():
        root = root / "VOC2012"
    list_file = root / "ImageSets" / "Main" / ("train.txt" if split == "train" else "val.txt")
    if not list_file.is_file():
        raise DatasetError(f"voc-detection: {list_file} not found; pass --data-dir with a "
                           "VOC folder (Annotations, JPEGImages, ImageSets/Main)")
    names = [n.strip() for n in list_file.read_text().splitlines() if n.strip()][:limit]
    images = np.zeros((len(names), 3, size, size), np.uint8)
    boxes = np.empty(len(names), dtype=object)
    for i, name in enumerate(names):
        xml = root / "Annotations" / f"{name}.xml"
        jpg = root / "JPEGImages" / f"{name}.jpg"
        for p in (xml, jpg):
            if not p.is_file():
                raise DatasetError(f"voc-detection: {p} not found (listed in {list_file})")
        try:
            images[i], sx, sy = _resized(jpg, size)
            rows = []
            for obj in ET.parse(xml).getroot().iter("object"):
                cls = obj.findtext("name", "").strip()
                if cls not in VOC_CLASSES:
                    raise DatasetError(f"voc-detection: {xml}: unknown class '{cls}'")
                if obj.findtext("difficult", "0").strip() == "1":
                    continue
                bb = obj.find("bndbox")
                x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
                # VOC corners are 1-based and inclusive
                rows.append(((x0 - 1) * sx, (y0 - 1) * sy, x1 * sx, y1 * sy,
                             VOC_CLASSES.index(cls)))
        except (ET.ParseError, AttributeError, TypeError, ValueError) as err:
            raise DatasetError(f"voc-detection: {xml}: not a VOC annotation ({err})") from None
        except OSError as err:
            raise DatasetError(f"voc-detection: cannot read {jpg} ({err})") from None
        boxes[i] = np.asarray(rows, np.float32).reshape(-1, 5)
    return images, boxes


def load_coco(root: str | os.PathLike, split: str, size: int = DET_SIZE,
              limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    from .data import DatasetError
    root = Path(root)
    part = "train2017" if split == "train" else "val2017"
    ann = root / "annotations" / f"instances_{part}.json"
    if not ann.is_file():
        raise DatasetError(f"coco: {ann} not found; pass --data-dir with a COCO folder "
                           f"(annotations/instances_{part}.json, {part}/)")
    try:
        data = json.loads(ann.read_text())
        cats = sorted(c["id"] for c in data["categories"])
        index = {cid: i for i, cid in enumerate(cats)}
        imgs = sorted(data["images"], key=lambda d: d["id"])[:limit]
        by_image: dict[int, list] = {d["id"]: [] for d in imgs}
        for a in data["annotations"]:
            if a["image_id"] in by_image and not a.get("iscrowd", 0):
                by_image[a["image_id"]].append(a)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DatasetError(f"coco: {ann}: not a COCO instances file ({err})") from None
    images = np.zeros((len(imgs), 3, size, size), np.uint8)
    boxes = np.empty(len(imgs), dtype=object)
    for i, d in enumerate(imgs):
        path = root / part / d["file_name"]
        if not path.is_file():
            raise DatasetError(f"coco: {path} not found (listed in {ann})")
        try:
            images[i], sx, sy = _resized(path, size)
        except OSError as err:
            raise DatasetError(f"coco: cannot read {path} ({err})") from None
        rows = []
        for a in by_image[d["id"]]:
            if a["category_id"] not in index:
                raise DatasetError(f"coco: {ann}: annotation {a.get('id')} has category "
                                   f"{a['category_id']}, not in 'categories'")
            x, y, w, h = a["bbox"]
            rows.append((x * sx, y * sy, (x + w) * sx, (y + h) * sy, index[a["category_id"]]))
        boxes[i] = np.asarray(rows, np.float32).reshape(-1, 5)
    return images, boxes
