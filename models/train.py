"""Training and evaluation on real data.

One function each: :func:`train` (progress bar, per-epoch checkpoint with resume, metrics
JSON, fixed seeds, optional two-stage schedule, CPU or CUDA) and :func:`evaluate`.

Output folder layout of ``train(..., out=DIR)``::

    DIR/last.pt          training state after the last finished epoch (for --resume)
    DIR/<variant>.pt     final model (weights + config + metrics): what eval/export take
    DIR/metrics.json     config, per-epoch loss/accuracy/time, final test accuracy
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .blocks import set_relaxed
from .checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from .data import dataset_info, load_dataset
from .registry import create_model


class TrainError(RuntimeError):
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
    test_limit: int | None = None
    data_dir: str | None = None
    device: str = "auto"             # auto: CUDA when present, else CPU
    overrides: dict = field(default_factory=dict)   # model options, e.g. {"k": 2}


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


@torch.no_grad()
def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray,
             batch_size: int = 500, device: torch.device | str = "cpu",
             progress: bool = False) -> dict:
    """Accuracy on (uint8 NCHW images, labels). Returns accuracy, n, correct, predictions."""
    device = torch.device(device)
    model.eval().to(device)
    preds = []
    for start in tqdm(range(0, len(images), batch_size), desc="eval", disable=not progress,
                      leave=False):
        x = torch.from_numpy(images[start:start + batch_size]).float().to(device)
        preds.append(model(x).argmax(1).cpu())
    pred = torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64)
    correct = int((pred == labels).sum())
    return {"accuracy": correct / max(1, len(labels)), "n": int(len(labels)),
            "correct": correct, "predictions": pred}


def _check_out(out: Path, resume: bool, force: bool, variant: str) -> None:
    final = out / f"{variant}.pt"
    if resume or force:
        return
    if (out / "last.pt").exists() or final.exists():
        raise TrainError(f"{out} already holds a training run; pass --resume to continue it "
                         "or --force to start over (its files are then overwritten)")


def train(cfg: TrainConfig, out: str | os.PathLike, resume: bool = False,
          force: bool = False, progress: bool = True, stop_after: int | None = None) -> dict:
    """Train ``cfg.variant`` on ``cfg.dataset``; returns the metrics dict (also on disk).

    ``stop_after``: stop once this many epochs are done (of ``cfg.epochs``), keeping
    ``last.pt`` to ``resume`` from later: time-boxed training in short sessions.
    """
    out = Path(out)
    _check_out(out, resume, force, cfg.variant)
    if cfg.relaxed_epochs > cfg.epochs:
        raise TrainError(f"relaxed_epochs ({cfg.relaxed_epochs}) > epochs ({cfg.epochs})")
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    info = dataset_info(cfg.dataset)
    model = create_model(cfg.variant, dataset=cfg.dataset, **cfg.overrides)
    x_train, y_train = load_dataset(cfg.dataset, "train", cfg.data_dir, cfg.train_limit)
    x_test, y_test = load_dataset(cfg.dataset, "test", cfg.data_dir, cfg.test_limit)
    model.to(device)

    steps_per_epoch = math.ceil(len(x_train) / cfg.batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, epochs=cfg.epochs,
                                                steps_per_epoch=steps_per_epoch)
    history: list[dict] = []
    start_epoch = 0
    gen = torch.Generator().manual_seed(cfg.seed)
    last = out / "last.pt"
    if resume and last.exists():
        state = read_checkpoint(last)
        if state["variant"] != cfg.variant:
            raise CheckpointError(f"{last}: run was for '{state['variant']}', not '{cfg.variant}'")
        if state["train_config"] != asdict(cfg):
            changed = sorted(k for k, v in asdict(cfg).items() if state["train_config"].get(k) != v)
            raise TrainError(f"{last}: cannot resume with different settings ({', '.join(changed)}); "
                             "use --force to start over")
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history = state["history"]
        start_epoch = len(history)

    flip = cfg.dataset == "cifar10" or cfg.dataset == "fashion-mnist"
    end_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    for epoch in range(start_epoch, end_epoch):
        relaxed = epoch < cfg.relaxed_epochs
        set_relaxed(model, relaxed)
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        t0 = time.perf_counter()
        total_loss, seen, correct = 0.0, 0, 0
        bar = tqdm(range(steps_per_epoch), disable=not progress, unit="batch",
                   desc=f"{cfg.variant} epoch {epoch + 1}/{cfg.epochs}"
                        + (" (relaxed)" if relaxed else ""))
        for step in bar:
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            x = torch.from_numpy(x_train[idx.numpy()]).float()
            y = torch.from_numpy(y_train[idx.numpy()])
            if cfg.augment:
                x = _augment(x, gen, flip)
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(y)
            seen += len(y)
            correct += int((logits.argmax(1) == y).sum())
            if step % 20 == 0:
                bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
        train_time = time.perf_counter() - t0
        set_relaxed(model, False)
        test = evaluate(model, x_test, y_test, device=device)
        history.append({"epoch": epoch + 1, "relaxed": relaxed, "loss": total_loss / seen,
                        "train_accuracy": correct / seen, "test_accuracy": test["accuracy"],
                        "seconds": train_time, "images_per_s": seen / train_time})
        tqdm.write(  # one line per epoch, also in logs without progress bars
            f"epoch {epoch + 1}: loss {total_loss / seen:.4f}  "
                       f"train {correct / seen:.4f}  test {test['accuracy']:.4f}  "
                       f"({train_time:.0f} s, {seen / train_time:.0f} img/s)")
        model.cpu()
        save_checkpoint(last, model, {"history": history}, train_config=asdict(cfg),
                        history=history, optimizer=opt.state_dict(),
                        scheduler=sched.state_dict(), generator=gen.get_state(),
                        torch_rng=torch.get_rng_state())
        model.to(device)

    if end_epoch < cfg.epochs:
        return {"variant": cfg.variant, "stopped_early": True, "history": history}
    model.cpu().eval()
    final = evaluate(model, x_test, y_test)
    metrics = {
        "variant": cfg.variant, "stopped_early": False, "dataset": cfg.dataset,
        "model_config": model.config,
        "train_config": asdict(cfg), "device": str(device),
        "test_accuracy": final["accuracy"], "test_images": final["n"],
        "train_images": int(len(x_train)), "num_classes": info.num_classes,
        "train_seconds": sum(h["seconds"] for h in history),
        "torch_threads": torch.get_num_threads(), "history": history,
    }
    save_checkpoint(out / f"{cfg.variant}.pt", model, {
        k: metrics[k] for k in ("dataset", "test_accuracy", "test_images", "train_images",
                                "train_seconds", "device")} | {"epochs": cfg.epochs})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
