"""The pieces of the training recipe, each on its own: augmentation, knowledge
distillation (the teacher and its loss), fine-tuning's start from a trained checkpoint, the
soft gates' parameter group, stochastic weight averaging. ``train.py`` runs them in its
loop; the task's own losses live beside its model (``detnet.py``)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from groupnet.errors import UserError

from .checkpoint import CheckpointError, load_checkpoint, load_weights, read_checkpoint
from .data import dataset_info
from .metrics import dense_logits
from .scenes import IGNORE_INDEX


class TrainError(UserError, RuntimeError):
    """Bad training request (user error)."""


@dataclass
class TrainConfig:
    variant: str
    dataset: str = "fashion-mnist"
    epochs: int = 10
    relaxed_epochs: int = 0          # two-stage: first epochs with real-valued activations
    batch_size: int = 128
    lr: float = 3e-3                 # peak learning rate of the one-cycle schedule (Adam)
    weight_decay: float = 0.0
    seed: int = 0
    augment: bool = True             # random shifts of +-2 px (+ horizontal flips)
    train_limit: int | None = None   # use only the first N training images
    test_limit: int | None = None    # evaluate on the first N test images
    val_limit: int | None = None     # hold out only the first N validation images (quick runs)
    data_dir: str | None = None
    device: str = "auto"             # auto: CUDA when present, else CPU
    overrides: dict = field(default_factory=dict)   # model options, e.g. {"k": 2}
    eval_subset: int | None = 2000   # per-epoch check on the first N images of the check
                                     # split (None: all); the final accuracies are always on
                                     # the whole val and test sets
    validation: bool = True          # the validation protocol (module docstring); False: the
                                     # old one (all training images, checks on test images)
    fast: bool = True                # training fast paths of the quantizers (same values)
    teacher: str | None = None       # checkpoint of a trained model to distil from
    distill_alpha: float = 0.7       # loss = (1-a) CE(labels) + a T^2 KL(teacher || student)
    distill_temperature: float = 4.0
    gate_lr_scale: float = 30.0      # soft gates learn at this multiple of the learning rate
    init: str | None = None          # fine-tune: start from this trained checkpoint's weights
                                     # (same variant and options; new optimizer and schedule)
    swa_epochs: int = 0              # stochastic weight averaging: the last N epochs run at the
                                     # constant swa_lr (the one-cycle schedule spans the others)
                                     # and the model is the mean of the weights at their ends,
                                     # batch-norm statistics then recomputed (see _swa_finish)
    swa_lr: float = 1e-4


def check_config(cfg: TrainConfig) -> None:
    if cfg.epochs < 1:
        raise TrainError(f"epochs must be >= 1, got {cfg.epochs}")
    if not 0 <= cfg.relaxed_epochs <= cfg.epochs:
        raise TrainError(f"relaxed_epochs ({cfg.relaxed_epochs}) must be in 0..epochs "
                         f"({cfg.epochs})")
    if not 0.0 <= cfg.distill_alpha <= 1.0 or cfg.distill_temperature <= 0:
        raise TrainError("distill_alpha must be in [0, 1] and distill_temperature > 0")
    if not 0 <= cfg.swa_epochs <= cfg.epochs or (cfg.swa_epochs and cfg.swa_lr <= 0):
        raise TrainError(f"swa_epochs ({cfg.swa_epochs}) must be in 0..epochs ({cfg.epochs}) "
                         f"and swa_lr ({cfg.swa_lr:g}) > 0")


def check_out(out: Path, resume: bool, force: bool, variant: str) -> None:
    """A run folder to start in: empty of a run unless resumed or forced."""
    final = out / f"{variant}.pt"
    if resume or force:
        return
    if (out / "last.pt").exists() or final.exists():
        raise TrainError(f"{out} already holds a training run; pass --resume to continue it "
                         "or --force to start over (its files are then overwritten)")


# ------------------------------------------------------------------- augmentation
def augment(x: torch.Tensor, gen: torch.Generator, flip: bool) -> torch.Tensor:
    """Random translation by up to 2 px (zero fill) and optional horizontal flip."""
    n, _, h, w = x.shape
    padded = F.pad(x, (2, 2, 2, 2))
    dy = torch.randint(0, 5, (n,), generator=gen)
    dx = torch.randint(0, 5, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(n, x.shape[1], h, w + 4)
    out = padded.gather(2, rows.to(x.device))
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(n, x.shape[1], h, w)
    out = out.gather(3, cols.to(x.device))
    if flip:
        mask = torch.rand(n, generator=gen) < 0.5
        out[mask.to(x.device)] = out[mask.to(x.device)].flip(-1)
    return out


def flip_boxes(x: torch.Tensor, boxes: list[torch.Tensor], gen: torch.Generator
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Detection augmentation: random horizontal flips of images and their boxes."""
    mask = torch.rand(len(x), generator=gen) < 0.5
    x, w, out = x.clone(), x.shape[-1], []
    x[mask] = x[mask].flip(-1)
    for b, flip in zip(boxes, mask.tolist()):
        if flip and len(b):
            b = b.clone()
            b[:, [0, 2]] = w - b[:, [2, 0]]
        out.append(b)
    return x, out


def flip_pairs(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Segmentation augmentation: the same random horizontal flip of image and mask."""
    mask = torch.rand(len(x), generator=gen) < 0.5
    x, y = x.clone(), y.clone()
    x[mask], y[mask] = x[mask].flip(-1), y[mask].flip(-1)
    return x, y


# ------------------------------------------------------------ distillation, init
def load_teacher(cfg, info) -> nn.Module:
    """The distillation teacher: a trained checkpoint of the same dataset and input size."""
    path = Path(cfg.teacher)
    try:
        teacher, payload = load_checkpoint(path)
    except CheckpointError as err:
        raise TrainError(f"--teacher: {err}") from None
    t_data = payload["config"].get("dataset", "fashion-mnist")
    t_info = dataset_info(t_data)
    if t_data != cfg.dataset:
        raise TrainError(f"--teacher {path}: trained on {t_data}, not {cfg.dataset}; "
                         f"train a {cfg.dataset} teacher first")
    if tuple(teacher.input_shape) != info.shape or t_info.num_classes != info.num_classes:
        raise TrainError(f"--teacher {path}: takes {tuple(teacher.input_shape)} inputs with "
                         f"{t_info.num_classes} classes, the student {info.shape} with "
                         f"{info.num_classes}")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


def warm_start(model: nn.Module, cfg) -> dict:
    """Load the weights of the trained checkpoint ``cfg.init`` into ``model`` (fine-tuning:
    the optimizer and schedule start anew). Returns the checkpoint's metrics.

    A compact zoo checkpoint keeps only the signs of the binary layers' latent weights
    (:func:`compact_checkpoint`); each such layer then starts from sign * the mean magnitude
    of its fresh initialization (the model's own, seeded), so the computed function is the
    checkpoint's exactly and a weight flips after some tens of consistent Adam steps at the
    peak learning rate, as in early training, instead of thousands (+-1 latents) or at once
    (tiny latents). Quantizer scales and batch-norm statistics come from the checkpoint
    (collection does not restart).
    """
    path = Path(cfg.init)
    try:
        payload = read_checkpoint(path)
    except CheckpointError as err:
        raise TrainError(f"--init: {err}") from None
    mine = {k: v for k, v in model.config.items() if k != "variant"}
    if payload["variant"] != cfg.variant or payload["config"] != mine:
        diff = sorted(k for k in set(mine) | set(payload["config"])
                      if mine.get(k) != payload["config"].get(k))
        raise TrainError(f"--init {path}: trained as '{payload['variant']}' "
                         f"{payload['config']}, this run is '{cfg.variant}' {mine}"
                         + (f" (differs in {', '.join(diff)})" if diff else "")
                         + "; fine-tune the same variant with the same -O options")
    fresh = model.state_dict()
    try:
        load_weights(model, payload, path, latent_scale={
            k: fresh[k].abs().mean() for k in payload.get("binary_weights_int8") or []})
    except CheckpointError as err:
        raise TrainError(f"--init: {err}") from None
    return payload.get("metrics", {})


def distillation_loss(logits: torch.Tensor, labels: torch.Tensor,
                      teacher_logits: torch.Tensor | None, alpha: float,
                      temperature: float) -> torch.Tensor:
    """Cross entropy to the labels, mixed with the KL divergence to the teacher's softened
    distribution (Hinton et al.): (1 - a) CE + a T^2 KL(p_teacher^T || p_student^T)."""
    if isinstance(labels, list):       # detection: train() calls detnet's losses
        return None
    if logits.dim() == 4:              # segmentation: labels are masks at the input size
        ce = F.cross_entropy(dense_logits(logits, tuple(labels.shape[-2:])), labels,
                             ignore_index=IGNORE_INDEX)
        if teacher_logits is not None:   # the KL term per score-map cell
            c = logits.shape[1]
            logits = logits.permute(0, 2, 3, 1).reshape(-1, c)
            teacher_logits = teacher_logits.permute(0, 2, 3, 1).reshape(-1, c)
    else:
        ce = F.cross_entropy(logits, labels)
    if teacher_logits is None:
        return ce
    t = temperature
    kl = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(teacher_logits / t, 1),
                  reduction="batchmean", log_target=True)
    return (1 - alpha) * ce + alpha * t * t * kl


# ------------------------------------------------------ gates, weight averaging
def param_groups(model: nn.Module, cfg) -> list[dict]:
    """Adam parameter groups: the soft gates' logits learn ``gate_lr_scale`` times faster.

    A gate's level changes only when its logit crosses a rounding boundary (|theta| > 1.1
    from the start), while its gradient is one scalar summed over whole feature maps, small
    and noisy: at the weights' learning rate no gate ever got there (README "Soft gates")."""
    gates, rest = [], []
    for name, p in model.named_parameters():
        (gates if name.endswith("theta") and ".gates." in f".{name}" else rest).append(p)
    groups = [{"params": rest, "lr": cfg.lr}]
    if gates:
        groups.append({"params": gates, "lr": cfg.lr * cfg.gate_lr_scale})
    return groups


def swa_update(model: nn.Module, swa: dict) -> dict:
    """Fold the model's current weights (parameters: latent weights, batch-norm affine,
    quantizer scales) into the running mean ``swa``; returns the new state. The values are
    the state dict's: a quantizer scale still collecting statistics is its buffer there.
    A parameter shared by several layers (a ResNet's shared quantizer) is kept under each
    of its names, so that loading the mean sets it whichever name loads last."""
    n = swa["n"] + 1
    state = model.state_dict()
    now = {k: state.get(k, p).detach().cpu().clone()   # (not yet collecting: the parameter)
           for k, p in model.named_parameters(remove_duplicate=False)}
    mean = now if swa["mean"] is None else {
        k: m + (now[k] - m) / n for k, m in swa["mean"].items()}
    return {"n": n, "mean": mean}


def swa_finish(model: nn.Module, swa: dict, images: np.ndarray, progress: bool = False,
                batch_size: int = 500, device: torch.device | str = "cpu") -> dict:
    """Stochastic weight averaging's end (Izmailov et al. 2018): load the mean weights
    into ``model``, then recompute every batch-norm layer's statistics as the plain average
    over ``images`` (the un-augmented training set) with the mean weights, since the mean
    of the snapshots' running statistics is not the statistics of the mean weights. For a
    binary net this is where the mean matters: each latent weight's sign is a
    magnitude-weighted vote of the snapshots, and the recomputed statistics become the
    hardware thresholds. Returns what it did (images, seconds)."""
    t0 = time.perf_counter()
    model.load_state_dict({**model.state_dict(), **swa["mean"]})   # (ends any collection)
    # batch norm in training mode with a cumulative average (momentum None), the rest in
    # eval mode (a quantizer still collecting its statistics must not go on collecting)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    # batches of at most batch_size and even sizes (never a batch of one image, which
    # batch norm in training mode refuses)
    batches = np.array_split(np.arange(len(images)), math.ceil(len(images) / batch_size))
    with torch.no_grad():
        for idx in tqdm(batches, desc="swa batch-norm", disable=not progress, leave=False):
            model(torch.from_numpy(images[idx[0]:idx[-1] + 1]).float().to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()
    return {"bn_images": int(len(images)), "bn_seconds": time.perf_counter() - t0}
