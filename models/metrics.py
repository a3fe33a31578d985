"""Evaluation: a model's task metrics on (uint8 NCHW images, labels): accuracy,
segmentation's pixel accuracy and mean IoU, detection's mAP (``detnet``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .scenes import IGNORE_INDEX


def task_of(model: nn.Module) -> str:
    return getattr(model, "task", "classification")


def dense_logits(model_out: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A segmentation net's score maps upsampled to the input size (host-side work)."""
    from .segnet import upsample_scores
    return upsample_scores(model_out, size)


@torch.no_grad()
def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray,
             batch_size: int = 500, device: torch.device | str = "cpu",
             progress: bool = False) -> dict:
    """Accuracy on (uint8 NCHW images, labels). Returns accuracy, n, correct, predictions.

    For a segmentation net (``labels`` are (N, H, W) masks, 255 void): ``accuracy`` is the
    pixel accuracy, ``miou`` the mean intersection over union over the classes
    (torchmetrics), ``predictions`` the predicted masks (uint8)."""
    device = torch.device(device)
    model.eval().to(device)
    if task_of(model) == "detection":
        from .detnet import evaluate_detection
        res = evaluate_detection(model.cpu(), images, labels)
        model.to(device)
        return {"accuracy": None, "map50": res["map50"], "map": res["map"], "n": res["n"],
                "correct": None, "predictions": res["detections"]}
    seg = task_of(model) == "segmentation"
    preds = []
    for start in tqdm(range(0, len(images), batch_size), desc="eval", disable=not progress,
                      leave=False):
        x = torch.from_numpy(images[start:start + batch_size]).float().to(device)
        if seg:   # the masks the host computes from the accelerator's integer maps
            out = dense_logits(model.integer_scores(x), tuple(x.shape[-2:]))
        else:
            out = model(x)
        preds.append(out.argmax(1).cpu())
    if not seg:
        pred = torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64)
        correct = int((pred == labels).sum())
        return {"accuracy": correct / max(1, len(labels)), "n": int(len(labels)),
                "correct": correct, "predictions": pred}
    pred = torch.cat(preds).to(torch.uint8)
    return {**segmentation_scores(pred, torch.from_numpy(np.asarray(labels)),
                                  model.head.fc.out_channels),
            "n": int(len(labels)), "predictions": pred.numpy()}


def segmentation_scores(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> dict:
    """Pixel accuracy and mean IoU (torchmetrics) of predicted masks, 255 = void."""
    from torchmetrics.classification import MulticlassJaccardIndex
    pred, target = pred.long(), target.long()
    valid = target != IGNORE_INDEX
    miou = MulticlassJaccardIndex(num_classes=num_classes, ignore_index=IGNORE_INDEX,
                                  average="macro")(pred, target)
    per_class = MulticlassJaccardIndex(num_classes=num_classes, ignore_index=IGNORE_INDEX,
                                       average="none")(pred, target)
    correct = int((pred[valid] == target[valid]).sum())
    return {"accuracy": correct / max(1, int(valid.sum())), "correct": correct,
            "miou": float(miou), "iou_per_class": [float(v) for v in per_class]}
