"""Host side of a segmentation accelerator, in numpy only (it runs on the board).

The accelerator streams one integer score per class and cell of the (H/s, W/s) map; the
host upsamples the maps to the input size (bilinear with half-pixel centres, the same as
``torch.nn.functional.interpolate(..., mode="bilinear", align_corners=False)`` in training)
and takes the argmax per pixel. Upsampling is linear, so upsampling the raw popcounts gives
the argmax of the upsampled scores (score = 2 * popcount - N, the same N for every class).
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = 255


def _axis_weights(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output index: the two source indices and the weight of the second."""
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    pos = np.clip(pos, 0.0, None)
    i0 = np.minimum(np.floor(pos).astype(np.int64), src - 1)
    i1 = np.minimum(i0 + 1, src - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def upsample_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, C, h, w) -> (N, C, H, W) float32, bilinear, half-pixel centres."""
    maps = np.asarray(maps, dtype=np.float32)
    r0, r1, wr = _axis_weights(maps.shape[-2], size[0])
    c0, c1, wc = _axis_weights(maps.shape[-1], size[1])
    rows = maps[..., r0, :] * (1 - wr)[:, None] + maps[..., r1, :] * wr[:, None]
    return rows[..., c0] * (1 - wc) + rows[..., c1] * wc


def masks_from_scores(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Score maps (N, C, h, w) -> predicted class masks (N, H, W) uint8."""
    return upsample_bilinear(maps, size).argmax(axis=1).astype(np.uint8)


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts, rows = truth; void (255) pixels left out."""
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    keep = target != IGNORE_INDEX
    idx = target[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    return np.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def segmentation_metrics(pred: np.ndarray, target: np.ndarray, num_classes: int) -> dict:
    """Pixel accuracy and mean IoU over the classes that occur in the truth or the
    prediction (as torchmetrics' MulticlassJaccardIndex averages, which training uses)."""
    cm = confusion_matrix(pred, target, num_classes)
    inter = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    present = union > 0
    return {"pixel_accuracy": float(inter.sum() / max(1, cm.sum())),
            "miou": float(iou[present].mean()) if present.any() else 0.0,
            "iou_per_class": [None if np.isnan(v) else float(v) for v in iou]}
