"""Host side of a detection accelerator, in numpy only: decode, thresholds, NMS, mAP.

This module is the one implementation of the detector's post-processing: the board's
driver runs it, and so do training-time evaluation (``models/detnet.py``) and the
notebooks, so the numbers measured off the board are the board's.

The accelerator streams, per cell of the (H/s, W/s) grid, ``C + 5`` integer scores:
C class scores, 4 box distances (left, top, right, bottom) and one centerness score
(FCOS, single level). ``decode`` maps them to boxes with the model's host-side affine
parameters (``params``, from training, shipped in ``io_spec.json``):

    class prob  = sigmoid(cls_scale * z_c + cls_bias[c])
    distance    = stride * exp(box_scale * z_d + box_bias)
    centerness  = sigmoid(ctr_scale * z_t + ctr_bias)
    score       = sqrt(class prob * centerness)

then keeps scores above ``score_threshold``, the ``pre_nms`` best, runs class-wise NMS at
``iou_threshold`` and keeps ``max_detections``.
"""

from __future__ import annotations

import numpy as np

DEFAULTS = {"score_threshold": 0.05, "iou_threshold": 0.6, "pre_nms": 200,
            "max_detections": 100}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))          # stable for large |x|


def cell_centres(h: int, w: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every cell centre, (h*w,) each, row-major."""
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return ((xs.ravel() + 0.5) * stride).astype(np.float64), \
           ((ys.ravel() + 0.5) * stride).astype(np.float64)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (n, 4) and (m, 4) boxes x0, y0, x1, y1."""
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        if len(order) == 1:
            break
        iou = box_iou(boxes[i:i + 1], boxes[order[1:]])[0]
        order = order[1:][iou <= iou_threshold]
    return np.asarray(keep, np.int64)


def decode(maps: np.ndarray, params: dict, image_size: tuple[int, int],
           **options) -> list[dict]:
    """Score maps (N, C + 5, h, w) -> per image ``{"boxes" (n, 4), "scores" (n,),
    "classes" (n,)}``, boxes clipped to the image, best first."""
    opt = {**DEFAULTS, **options}
    maps = np.asarray(maps, np.float64)
    n, ch, h, w = maps.shape
    c = ch - 5
    stride = int(params["stride"])
    cx, cy = cell_centres(h, w, stride)
    flat = maps.reshape(n, ch, h * w)
    cls = _sigmoid(params["cls_scale"] * flat[:, :c]
                   + np.asarray(params["cls_bias"], np.float64)[None, :, None])
    dist = stride * np.exp(np.clip(params["box_scale"] * flat[:, c:c + 4]
                                   + params["box_bias"], -20, 20))
    ctr = _sigmoid(params["ctr_scale"] * flat[:, c + 4] + params["ctr_bias"])
    score = np.sqrt(cls * ctr[:, None, :])
    out = []
    for i in range(n):
        cell_cls = np.nonzero(score[i] > opt["score_threshold"])
        s = score[i][cell_cls]
        if len(s) > opt["pre_nms"]:
            top = np.argsort(-s, kind="stable")[:opt["pre_nms"]]
            cell_cls, s = (cell_cls[0][top], cell_cls[1][top]), s[top]
        k, j = cell_cls
        d = dist[i][:, j]
        boxes = np.stack([cx[j] - d[0], cy[j] - d[1], cx[j] + d[2], cy[j] + d[3]], 1)
        boxes = np.clip(boxes, 0, [image_size[1], image_size[0]] * 2)
        keep = []
        for cls_id in np.unique(k):             # class-wise NMS
            idx = np.nonzero(k == cls_id)[0]
            keep.extend(idx[nms(boxes[idx], s[idx], opt["iou_threshold"])])
        keep = np.asarray(keep, np.int64)
        keep = keep[np.argsort(-s[keep], kind="stable")][:opt["max_detections"]]
        out.append({"boxes": boxes[keep].astype(np.float32), "scores": s[keep].astype(np.float32),
                    "classes": k[keep].astype(np.int64)})
    return out


def coco_map(detections: list[dict], truth, num_classes: int,
             image_size: tuple[int, int]) -> dict:
    """COCO-style mAP@[.5:.95] and mAP@0.5 (pycocotools' COCOeval; on a board without it,
    ``pip install pycocotools``). ``truth``: per image (n, 5) boxes x0, y0, x1, y1, class."""
    import contextlib
    import io

    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        return {"map": None, "map50": None,
                "note": "pycocotools is not installed: pip install pycocotools"}
    images, anns, dets = [], [], []
    for i, (det, gt) in enumerate(zip(detections, truth)):
        images.append({"id": i, "width": image_size[1], "height": image_size[0]})
        for x0, y0, x1, y1, cls in np.asarray(gt, np.float64).reshape(-1, 5):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(cls),
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                         "iscrowd": 0})
        for (x0, y0, x1, y1), s, cls in zip(det["boxes"].astype(np.float64), det["scores"],
                                            det["classes"]):
            dets.append({"image_id": i, "category_id": int(cls), "score": float(s),
                         "bbox": [x0, y0, x1 - x0, y1 - y0]})
    gt_api = COCO()
    gt_api.dataset = {"images": images, "annotations": anns,
                      "categories": [{"id": c} for c in range(num_classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt_api.createIndex()
        if not dets:
            return {"map": 0.0, "map50": 0.0, "detections": 0}
        dt_api = gt_api.loadRes(dets)
        ev = COCOeval(gt_api, dt_api, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"map": float(max(ev.stats[0], 0.0)), "map50": float(max(ev.stats[1], 0.0)),
            "detections": len(dets)}
