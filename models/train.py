"""Training and evaluation on real data.

One function each: :func:`train` (progress bar, checkpoints with exact resume, metrics
JSON, fixed seeds, optional two-stage schedule, optional knowledge distillation, CPU or
CUDA) and :func:`evaluate`.

Resume is exact: ``last.pt`` is written after every epoch, every ``checkpoint_seconds``
within an epoch and when the process gets SIGTERM/SIGINT; it holds the weights, the
optimizer, the schedule, the data order and RNG states and the runtime statistics that
Brevitas' quantizers are still collecting, so a run stopped anywhere and resumed ends with
the same weights as one that never stopped (tests/models/test_train.py).

Output folder layout of ``train(..., out=DIR)``::

    DIR/last.pt          training state at the last checkpoint (for --resume)
    DIR/<variant>.pt     final model (weights + config + metrics): what eval/export take
    DIR/metrics.json     config, per-epoch loss/accuracy/time and validation accuracy,
                         final validation and test accuracy

Validation protocol (``TrainConfig.validation``, the default): the model trains on the
``train`` split, every per-epoch check is on the held-out ``val`` split
(``data.holdout_indices``), and the test set is read once, after the last epoch of a
finished run: no code path before that loads it (tests/models/test_train.py). Records say
which split a number is on: ``val_*`` and ``test_*``. ``validation=False`` is the protocol
of the models trained before it (all training images, per-epoch ``check_*`` on the first
``eval_subset`` test images): their numbers were chosen with test-set checks.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from groupnet.errors import UserError
from groupnet.paths import portable

from . import distributed as dd
from .blocks import set_fast_training, set_relaxed
from .checkpoint import (CheckpointError, load_checkpoint, load_weights, read_checkpoint,
                         save_checkpoint)
from .data import dataset_info, load_dataset
from .registry import create_model
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


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _augment(x: torch.Tensor, gen: torch.Generator, flip: bool) -> torch.Tensor:
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


def task_of(model: nn.Module) -> str:
    return getattr(model, "task", "classification")


def dense_logits(model_out: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A segmentation net's score maps upsampled to the input size (host-side work)."""
    from .segnet import upsample_scores
    return upsample_scores(model_out, size)


def _flip_boxes(x: torch.Tensor, boxes: list[torch.Tensor], gen: torch.Generator
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


def _flip_pairs(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Segmentation augmentation: the same random horizontal flip of image and mask."""
    mask = torch.rand(len(x), generator=gen) < 0.5
    x, y = x.clone(), y.clone()
    x[mask], y[mask] = x[mask].flip(-1), y[mask].flip(-1)
    return x, y


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


def _check_out(out: Path, resume: bool, force: bool, variant: str) -> None:
    final = out / f"{variant}.pt"
    if resume or force:
        return
    if (out / "last.pt").exists() or final.exists():
        raise TrainError(f"{out} already holds a training run; pass --resume to continue it "
                         "or --force to start over (its files are then overwritten)")


def load_teacher(cfg: TrainConfig, info) -> nn.Module:
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


def warm_start(model: nn.Module, cfg: TrainConfig) -> dict:
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


def _new_epoch_position() -> dict:
    return {"step": 0, "order": None, "loss": 0.0, "seen": 0, "correct": 0, "seconds": 0.0,
            "cpu_seconds": 0.0}


def _param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
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


def _swa_update(model: nn.Module, swa: dict) -> dict:
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


def _swa_finish(model: nn.Module, swa: dict, images: np.ndarray, progress: bool = False,
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


def _stats_collectors(model: nn.Module) -> dict[str, nn.Module]:
    """Brevitas scaling modules that collect runtime statistics; their step counter and
    running buffer are not in the state dict (loading one ends the collection)."""
    return {name: mod for name, mod in model.named_modules()
            if hasattr(mod, "collect_stats_steps") and hasattr(mod, "counter")
            and hasattr(mod, "buffer")}


def _stats_state(model: nn.Module) -> dict:
    return {name: {"counter": int(mod.counter), "buffer": mod.buffer.detach().clone()}
            for name, mod in _stats_collectors(model).items()}


def _load_stats_state(model: nn.Module, state: dict) -> None:
    for name, mod in _stats_collectors(model).items():
        if name in state:
            mod.counter = state[name]["counter"]
            mod.buffer.copy_(state[name]["buffer"])


@contextmanager
def _stop_on_signals():
    """SIGTERM/SIGINT set a flag (checked between steps) instead of killing the run."""
    flag = {"stop": False}

    def handler(signum, frame):  # noqa: ARG001
        flag["stop"] = True

    old = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, handler)
    except ValueError:           # not the main thread: no handlers, periodic saves only
        pass
    try:
        yield flag
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def train(cfg: TrainConfig, out: str | os.PathLike, resume: bool = False,
          force: bool = False, progress: bool = True, stop_after: int | None = None,
          checkpoint_seconds: float = 300.0, stop_after_steps: int | None = None) -> dict:
    """Train ``cfg.variant`` on ``cfg.dataset``; returns the metrics dict (also on disk).

    ``stop_after``: stop once this many epochs are done (of ``cfg.epochs``), keeping
    ``last.pt`` to ``resume`` from later: time-boxed training in short sessions.
    ``stop_after_steps``: the same after this many optimizer steps in all (mid-epoch).
    ``checkpoint_seconds``: also write ``last.pt`` this often within an epoch.
    """
    out = Path(out)
    _check_out(out, resume, force, cfg.variant)
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
    device = dd.device_for(pick_device(cfg.device))
    ctx = dd.context(device)            # torchrun: this rank; else one process
    progress = progress and ctx.main
    seed_everything(cfg.seed)
    info = dataset_info(cfg.dataset)
    model = create_model(cfg.variant, dataset=cfg.dataset, **cfg.overrides)
    set_fast_training(model, cfg.fast)
    init_metrics = warm_start(model, cfg) if cfg.init else None
    teacher = load_teacher(cfg, info).to(device) if cfg.teacher else None
    x_train, y_train = load_dataset(cfg.dataset, "train" if cfg.validation else "trainval",
                                    cfg.data_dir, cfg.train_limit)
    if cfg.validation:   # the test set is read after the last epoch (read_test below)
        x_val, y_val = load_dataset(cfg.dataset, "val", cfg.data_dir, cfg.val_limit)
        x_check, y_check = x_val[:cfg.eval_subset], y_val[:cfg.eval_subset]
    else:                # the old protocol: per-epoch checks on the first test images
        x_test, y_test = load_dataset(cfg.dataset, "test", cfg.data_dir, cfg.test_limit)
        x_check, y_check = x_test[:cfg.eval_subset], y_test[:cfg.eval_subset]
    check = "val" if cfg.validation else "check"        # the per-epoch records' prefix
    check_split = "val" if cfg.validation else "test"
    model.to(device)
    net = dd.wrap(model, ctx, device)   # DDP under torchrun (the steps call net)
    model = dd.inner(net)               # (SyncBatchNorm on GPUs)
    collectors = _stats_collectors(model)

    steps_per_epoch = math.ceil(len(x_train) / cfg.batch_size)
    groups = _param_groups(model, cfg)
    lr_scales = [g["lr"] / cfg.lr for g in groups]
    opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    swa_start = cfg.epochs - cfg.swa_epochs       # first epoch at the constant swa_lr
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in groups], epochs=swa_start,
        steps_per_epoch=steps_per_epoch) if swa_start else None
    swa = {"n": 0, "mean": None}        # running mean of the weights at the SWA epochs' ends
    history: list[dict] = []
    gen = torch.Generator().manual_seed(cfg.seed)
    # augmentation: one process draws from gen; under torchrun each rank from its own
    # generator (gen keeps drawing the epoch permutations, the same on every rank)
    aug = torch.Generator().manual_seed(cfg.seed + 1000 * (ctx.rank + 1)) if ctx.active \
        else gen
    last = out / "last.pt"
    # position inside the current epoch (a mid-epoch checkpoint resumes from here)
    pos = _new_epoch_position()
    if resume and last.exists():
        state = read_checkpoint(last)
        if state["variant"] != cfg.variant:
            raise CheckpointError(f"{last}: run was for '{state['variant']}', not '{cfg.variant}'")
        defaults = asdict(TrainConfig(cfg.variant))     # settings added since the run began
        defaults["validation"] = False      # a run begun before it used the old protocol
        changed = sorted(k for k, v in asdict(cfg).items()
                         if state["train_config"].get(k, defaults[k]) != v)
        if changed:
            raise TrainError(f"{last}: cannot resume with different settings ({', '.join(changed)}); "
                             "use --force to start over")
        model.load_state_dict(state["state_dict"])
        _load_stats_state(model, state.get("quant_stats", {}))
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        swa = state.get("swa") or swa
        gen.set_state(state["generator"])
        if ctx.active:
            ranks = state.get("rank_generators") or []
            if len(ranks) != ctx.world:
                raise TrainError(f"{last}: written by a run of {len(ranks) or 1} process(es); "
                                 f"resume it with as many (torchrun --nproc-per-node="
                                 f"{len(ranks) or 1})")
            aug.set_state(ranks[ctx.rank])
        elif state.get("rank_generators"):
            raise TrainError(f"{last}: written by a run of {len(state['rank_generators'])} "
                             "processes; resume it under torchrun with as many")
        torch.set_rng_state(state["torch_rng"])
        history = state["history"]
        pos = state.get("epoch_position") or pos
    start_epoch = len(history)

    def checkpoint() -> None:
        # under torchrun every rank calls this at the same step; rank 0 writes
        dd.average_bn_stats(model, ctx)
        extra = {"rank_generators": dd.gather(aug.get_state(), ctx)} if ctx.active else {}
        if ctx.main:
            model.cpu()
            save_checkpoint(last, model, {"history": history}, train_config=asdict(cfg),
                            history=history, optimizer=opt.state_dict(),
                            scheduler=sched and sched.state_dict(), swa=swa,
                            generator=gen.get_state(),
                            torch_rng=torch.get_rng_state(), quant_stats=_stats_state(model),
                            epoch_position=pos if pos["step"] else None, **extra)
            model.to(device)
        dd.barrier(ctx)

    flip = cfg.dataset == "cifar10" or cfg.dataset == "fashion-mnist"
    seg = info.task == "segmentation"
    det = info.task == "detection"
    if det and teacher is not None:
        if not hasattr(teacher, "decoder"):
            raise TrainError(f"--teacher {cfg.teacher}: a detector learns from a detector "
                             "(fp_detnet, ...), not from a classifier")
        if teacher.decoder.stride != model.decoder.stride:
            raise TrainError(f"--teacher {cfg.teacher}: its maps have stride "
                             f"{teacher.decoder.stride}, the student's "
                             f"{model.decoder.stride}; the dense teacher term needs the same")
    end_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    steps_done = start_epoch * steps_per_epoch + pos["step"]
    stopped = False
    with _stop_on_signals() as signals:
        for epoch in range(start_epoch, end_epoch):
            relaxed = epoch < cfg.relaxed_epochs
            set_relaxed(model, relaxed)
            if epoch >= swa_start:
                for g, scale in zip(opt.param_groups, lr_scales):
                    g["lr"] = cfg.swa_lr * scale
            model.train()
            if pos["order"] is None:
                pos["order"] = torch.randperm(len(x_train), generator=gen)
            order = pos["order"]
            t0 = t_saved = time.perf_counter()
            c0 = time.process_time()
            bar = tqdm(range(pos["step"], steps_per_epoch), disable=not progress, unit="batch",
                       desc=f"{cfg.variant} epoch {epoch + 1}/{cfg.epochs}"
                            + (" (relaxed)" if relaxed else ""),
                       initial=pos["step"], total=steps_per_epoch)
            for step in bar:
                idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
                if ctx.active and len(idx) < ctx.world:   # a last batch too small to share
                    pos["step"] = step + 1
                    steps_done += 1
                    continue
                idx = dd.shard(idx, ctx)        # this rank's share of the global batch
                x = torch.from_numpy(x_train[idx.numpy()]).float()
                if det:
                    y = [torch.from_numpy(b) for b in y_train[idx.numpy()]]
                    if cfg.augment:
                        x, y = _flip_boxes(x, y, aug)
                else:
                    y = torch.from_numpy(y_train[idx.numpy()]).long()
                    if cfg.augment and seg:
                        x, y = _flip_pairs(x, y, aug)
                    elif cfg.augment:
                        x = _augment(x, aug, flip)
                x = x.to(device)
                y = [b.to(device) for b in y] if det else y.to(device)
                logits = net(x)
                if teacher is not None:
                    with torch.no_grad():
                        t_logits = teacher(x)
                else:
                    t_logits = None
                if det and t_logits is not None:
                    from .detnet import detection_distillation_loss
                    loss = detection_distillation_loss(model, logits, y, teacher, t_logits,
                                                       cfg.distill_alpha)
                elif det:
                    from .detnet import detection_loss
                    loss = detection_loss(model, logits, y)
                else:
                    loss = distillation_loss(logits, y, t_logits, cfg.distill_alpha,
                                             cfg.distill_temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if epoch < swa_start:
                    sched.step()
                dd.broadcast_collecting_stats(collectors, ctx)   # rank 0's, while collected
                pos["loss"] += loss.item() * len(y)
                pos["seen"] += len(y)
                if det:
                    pass      # no per-step quality figure for detection (mAP per epoch)
                elif seg:     # pixel accuracy, as a fraction of each image's pixels
                    pred = dense_logits(logits.detach(), tuple(y.shape[-2:])).argmax(1)
                    valid = y != IGNORE_INDEX
                    pos["correct"] += float((pred == y)[valid].sum()) / max(
                        1, int(valid.sum())) * len(y)
                else:
                    pos["correct"] += int((logits.argmax(1) == y).sum())
                pos["step"] = step + 1
                steps_done += 1
                if step % 20 == 0:
                    bar.set_postfix(loss=f"{pos['loss'] / pos['seen']:.3f}",
                                    acc=f"{pos['correct'] / pos['seen']:.3f}")
                now = time.perf_counter()
                stop_now = signals["stop"] or (stop_after_steps is not None
                                               and steps_done >= stop_after_steps)
                save_now = now - t_saved >= checkpoint_seconds
                if ctx.active:                  # every rank stops / saves at the same step
                    stop_now, save_now = dd.agree([stop_now, save_now], ctx)
                if pos["step"] < steps_per_epoch and (stop_now or save_now):
                    pos["seconds"] += now - t0
                    pos["cpu_seconds"] = pos.get("cpu_seconds", 0.0) + time.process_time() - c0
                    t0 = t_saved = now
                    c0 = time.process_time()
                    checkpoint()
                    if stop_now:
                        stopped = True
                        break
            bar.close()
            if stopped:
                break
            train_time = pos["seconds"] + time.perf_counter() - t0
            cpu_time = pos.get("cpu_seconds", 0.0) + time.process_time() - c0
            set_relaxed(model, False)
            loss_sum, seen, correct = dd.sum_over_ranks(
                [pos["loss"], pos["seen"], pos["correct"]], ctx)   # the global batch's
            record = {"epoch": epoch + 1, "relaxed": relaxed,
                      "loss": loss_sum / seen,
                      "train_accuracy": None if det else correct / seen,
                      "seconds": train_time, "cpu_seconds": cpu_time,
                      "images_per_s": seen / train_time}
            dd.average_bn_stats(model, ctx)
            if epoch >= swa_start:
                swa = _swa_update(model, swa)
            # every epoch on val; the old protocol skips the last (the full test set follows)
            if (cfg.validation or epoch + 1 < cfg.epochs) and ctx.main:
                res = evaluate(model, x_check, y_check, device=device)
                record |= {f"{check}_accuracy": res["accuracy"], f"{check}_images": res["n"]}
                if seg:
                    record[f"{check}_miou"] = res["miou"]
                if det:
                    record |= {f"{check}_map50": res["map50"], f"{check}_map": res["map"]}
            history.append(record)
            pos = _new_epoch_position()
            if det and f"{check}_map50" in record:
                tqdm.write(f"epoch {epoch + 1}: loss {record['loss']:.4f}  {check} mAP@0.5 "
                           f"{record[f'{check}_map50']:.4f} mAP {record[f'{check}_map']:.4f} "
                           f"({record[f'{check}_images']} {check_split} images)  "
                           f"({train_time:.0f} s, {record['images_per_s']:.0f} img/s)")
            elif f"{check}_accuracy" in record:
                tqdm.write(  # one line per epoch, also in logs without progress bars
                    f"epoch {epoch + 1}: loss {record['loss']:.4f}  "
                    f"train {record['train_accuracy']:.4f}  "
                    f"{check} {record[f'{check}_accuracy']:.4f}"
                    + (f" mIoU {record[f'{check}_miou']:.4f}" if seg else "")
                    + f" ({record[f'{check}_images']} {check_split} "
                    f"images)  ({train_time:.0f} s, {record['images_per_s']:.0f} img/s)")
            checkpoint()
            stop_now = signals["stop"] or (stop_after_steps is not None
                                           and steps_done >= stop_after_steps)
            if dd.agree([stop_now], ctx)[0]:
                stopped = True
                break

    if stopped or len(history) < cfg.epochs:
        net = None               # DDP's reducer goes before its process group
        dd.finish(ctx)
        return {"variant": cfg.variant, "stopped_early": True, "history": history,
                "steps_done": steps_done, "interrupted": bool(signals["stop"]),
                **({"rank": ctx.rank} if ctx.active else {})}
    # the run is finished: from here on the test set may be read, once per model
    if cfg.validation and ctx.main:
        x_test, y_test = load_dataset(cfg.dataset, "test", cfg.data_dir, cfg.test_limit)
    dd.average_bn_stats(model, ctx)
    swa_metrics = {}
    last_val = {}
    if cfg.swa_epochs:
        last_weights = evaluate(model, x_test, y_test, device=device) if ctx.main else None
        if cfg.validation and ctx.main:
            last_val = evaluate(model, x_val, y_val, device=device)
        if ctx.main:   # the last epoch's own model too (the same run without averaging)
            model.cpu()
            save_checkpoint(out / f"{cfg.variant}_last.pt", model, {
                "dataset": cfg.dataset, "test_accuracy": last_weights["accuracy"],
                "test_images": last_weights["n"], "epochs": cfg.epochs,
                "protocol": "validation" if cfg.validation else "test-checked",
                **({"val_accuracy": last_val["accuracy"]} if last_val else {}),
                "swa_last_weights": True})
            model.to(device)
        # every rank, on all images (SyncBatchNorm's statistics are a collective)
        done = _swa_finish(model, swa, x_train, progress, device=device)
        if ctx.main:
            swa_metrics = {"swa": {"epochs": cfg.swa_epochs, "lr": cfg.swa_lr,
                                   "snapshots": swa["n"], **done} | {
                f"last_weights_test_{k}": last_weights[k] for k in ("accuracy", "miou",
                                                                    "map50", "map")
                if last_weights.get(k) is not None} | {
                f"last_weights_val_{k}": last_val[k] for k in ("accuracy", "miou", "map50",
                                                               "map")
                if last_val.get(k) is not None}}
    hashes = dd.gather(dd.state_hash(model), ctx)
    if not ctx.main:
        net = None               # DDP's reducer goes before its process group
        dd.finish(ctx)
        return {"variant": cfg.variant, "stopped_early": False, "rank": ctx.rank,
                "history": history}
    model.cpu().eval()
    val_metrics = {}
    if cfg.validation:     # the whole val set (the per-epoch check may be a subset of it)
        val = evaluate(model, x_val, y_val)
        val_metrics = {f"val_{k}": val[k] for k in ("accuracy", "miou", "map50", "map")
                       if val.get(k) is not None} | {"val_images": val["n"]}
    final = evaluate(model, x_test, y_test)
    history[-1] |= {"test_accuracy": final["accuracy"]}
    seg_metrics = {"test_miou": final["miou"], "test_iou_per_class": final["iou_per_class"]
                   } if seg else {}
    if det:
        seg_metrics = {"test_map50": final["map50"], "test_map": final["map"],
                       "decode": model.decoder.params()}
        tqdm.write(f"epoch {cfg.epochs}: loss {history[-1]['loss']:.4f}  test mAP@0.5 "
                   f"{final['map50']:.4f} mAP {final['map']:.4f} ({final['n']} images)  "
                   f"({history[-1]['seconds']:.0f} s)")
    else:
        tqdm.write(f"epoch {cfg.epochs}: loss {history[-1]['loss']:.4f}  train "
                   f"{history[-1]['train_accuracy']:.4f}  "
                   + (f"val {val_metrics['val_accuracy']:.4f} " if val_metrics else "")
                   + f"test {final['accuracy']:.4f} "
                   + (f"mIoU {final['miou']:.4f} " if seg else "")
                   + f"({final['n']} images)  ({history[-1]['seconds']:.0f} s)")
    metrics = {
        "variant": cfg.variant, "stopped_early": False, "dataset": cfg.dataset,
        "model_config": model.config,
        "train_config": asdict(cfg), "device": str(device),
        "task": info.task,
        # which split chose the model: "validation" (per-epoch checks, and any decision on
        # them, on val; test read once here) or "test-checked" (the protocol before it)
        "protocol": "validation" if cfg.validation else "test-checked",
        "check_split": check_split, **val_metrics,
        "test_accuracy": final["accuracy"], "test_images": final["n"],
        **seg_metrics, "train_images": int(len(x_train)), "num_classes": info.num_classes,
        "train_seconds": sum(h["seconds"] for h in history),
        # CPU time of the training process: the fair figure on a shared or paused machine
        "train_cpu_seconds": sum(h.get("cpu_seconds", h["seconds"]) for h in history),
        "torch_threads": torch.get_num_threads(), "history": history, **swa_metrics,
    }
    if init_metrics is not None:     # a fine-tuned model: what it started from
        metrics["init"] = {"checkpoint": str(cfg.init), "epochs": init_metrics.get("epochs"),
                           "test_accuracy": init_metrics.get("test_accuracy"),
                           "train_seconds": init_metrics.get("train_seconds")}
    if ctx.active:
        metrics["distributed"] = {"world_size": ctx.world, "backend": ctx.backend,
                                  "identical_state_dicts": len(set(hashes)) == 1,
                                  "batch_per_rank": math.ceil(cfg.batch_size / ctx.world)}
    save_checkpoint(out / f"{cfg.variant}.pt", model, {
        k: metrics[k] for k in ("dataset", "protocol", "val_accuracy", "val_images",
                                "val_miou", "val_map50", "val_map", "test_accuracy",
                                "test_images", "train_images", "train_seconds", "device",
                                "test_miou", "test_map50", "test_map", "init")
        if k in metrics}
        | {"epochs": cfg.epochs})
    (out / "metrics.json").write_text(json.dumps(portable(metrics), indent=2) + "\n")
    net = None                   # DDP's reducer goes before its process group
    dd.finish(ctx)
    return metrics
