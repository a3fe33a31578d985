"""Training on real data: :func:`train` (progress bar, checkpoints with exact resume,
metrics JSON, fixed seeds, optional two-stage schedule, CPU or CUDA, torchrun).

The loop is here (``_Run``: set-up, resume, epochs, steps, the end); the recipe's pieces
(``TrainConfig``, augmentation, distillation, fine-tuning's start, weight averaging) are in
``recipe.py``, evaluation (:func:`evaluate`) in ``metrics.py``; both importable from here.

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
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from groupnet.paths import portable

from . import distributed as dd
from .blocks import set_fast_training, set_relaxed
from .checkpoint import (CheckpointError, load_stats_state, read_checkpoint, save_checkpoint,
                         stats_collectors, stats_state)
from .data import dataset_info, load_dataset
from .metrics import dense_logits, evaluate, segmentation_scores, task_of  # noqa: F401
from .recipe import (TrainConfig, TrainError, augment, check_config, check_out,  # noqa: F401
                     distillation_loss, flip_boxes, flip_pairs, load_teacher, param_groups,
                     swa_finish, swa_update, warm_start)
from .registry import create_model
from .scenes import IGNORE_INDEX


def _new_epoch_position() -> dict:
    return {"step": 0, "order": None, "loss": 0.0, "seen": 0, "correct": 0, "seconds": 0.0,
            "cpu_seconds": 0.0}


class _Run:
    """One training run's state: model, optimizer, schedule, data order, RNGs, position
    inside the epoch, history; what ``last.pt`` holds. Built in the order that decides the
    random draws (model init, then the generators), so that a resumed run is exact."""

    def __init__(self, cfg: TrainConfig, out: Path, progress: bool):
        self.cfg, self.last = cfg, out / "last.pt"
        self.device = dd.device_for(dd.pick_device(cfg.device))
        self.ctx = dd.context(self.device)           # torchrun: this rank; else one process
        self.progress = progress and self.ctx.main
        dd.seed_everything(cfg.seed)
        self.info = dataset_info(cfg.dataset)
        self.seg = self.info.task == "segmentation"
        self.det = self.info.task == "detection"
        model = create_model(cfg.variant, dataset=cfg.dataset, **cfg.overrides)
        set_fast_training(model, cfg.fast)
        self.init_metrics = warm_start(model, cfg) if cfg.init else None
        self.teacher = load_teacher(cfg, self.info).to(self.device) if cfg.teacher else None
        self._load_data()
        model.to(self.device)
        self.net = dd.wrap(model, self.ctx, self.device)   # DDP under torchrun (steps call
        self.model = dd.inner(self.net)                    # net; SyncBatchNorm on GPUs)
        self.collectors = stats_collectors(self.model)
        self.steps_per_epoch = math.ceil(len(self.x_train) / cfg.batch_size)
        groups = param_groups(self.model, cfg)
        self.lr_scales = [g["lr"] / cfg.lr for g in groups]
        self.opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.swa_start = cfg.epochs - cfg.swa_epochs     # first epoch at the constant swa_lr
        self.sched = torch.optim.lr_scheduler.OneCycleLR(
            self.opt, max_lr=[g["lr"] for g in groups], epochs=self.swa_start,
            steps_per_epoch=self.steps_per_epoch) if self.swa_start else None
        self.swa = {"n": 0, "mean": None}   # running mean of the SWA epochs' end weights
        self.history: list[dict] = []
        self.gen = torch.Generator().manual_seed(cfg.seed)
        # augmentation: one process draws from gen; under torchrun each rank from its own
        # generator (gen keeps drawing the epoch permutations, the same on every rank)
        self.aug = torch.Generator().manual_seed(cfg.seed + 1000 * (self.ctx.rank + 1)) \
            if self.ctx.active else self.gen
        self.pos = _new_epoch_position()   # inside the current epoch (mid-epoch resume)
        self.flip = cfg.dataset in ("cifar10", "fashion-mnist")
        self._check_teacher()

    def _load_data(self) -> None:
        cfg = self.cfg
        self.x_train, self.y_train = load_dataset(
            cfg.dataset, "train" if cfg.validation else "trainval", cfg.data_dir,
            cfg.train_limit)
        if cfg.validation:   # the test set is read after the last epoch (finish)
            self.x_val, self.y_val = load_dataset(cfg.dataset, "val", cfg.data_dir,
                                                  cfg.val_limit)
            self.x_check, self.y_check = (self.x_val[:cfg.eval_subset],
                                          self.y_val[:cfg.eval_subset])
        else:                # the old protocol: per-epoch checks on the first test images
            self.x_test, self.y_test = load_dataset(cfg.dataset, "test", cfg.data_dir,
                                                    cfg.test_limit)
            self.x_check, self.y_check = (self.x_test[:cfg.eval_subset],
                                          self.y_test[:cfg.eval_subset])
        self.check = "val" if cfg.validation else "check"   # the per-epoch records' prefix
        self.check_split = "val" if cfg.validation else "test"

    def _check_teacher(self) -> None:
        teacher, cfg = self.teacher, self.cfg
        if not self.det or teacher is None:
            return
        if not hasattr(teacher, "decoder"):
            raise TrainError(f"--teacher {cfg.teacher}: a detector learns from a detector "
                             "(fp_detnet, ...), not from a classifier")
        if teacher.decoder.stride != self.model.decoder.stride:
            raise TrainError(f"--teacher {cfg.teacher}: its maps have stride "
                             f"{teacher.decoder.stride}, the student's "
                             f"{self.model.decoder.stride}; the dense teacher term needs "
                             "the same")

    # ------------------------------------------------------------------ checkpoints
    def resume(self) -> None:
        """Continue from ``last.pt``: the same settings only, and as many processes."""
        last, cfg, ctx = self.last, self.cfg, self.ctx
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
        self.model.load_state_dict(state["state_dict"])
        load_stats_state(self.model, state.get("quant_stats", {}))
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None:
            self.sched.load_state_dict(state["scheduler"])
        self.swa = state.get("swa") or self.swa
        self.gen.set_state(state["generator"])
        if ctx.active:
            ranks = state.get("rank_generators") or []
            if len(ranks) != ctx.world:
                raise TrainError(f"{last}: written by a run of {len(ranks) or 1} process(es); "
                                 f"resume it with as many (torchrun --nproc-per-node="
                                 f"{len(ranks) or 1})")
            self.aug.set_state(ranks[ctx.rank])
        elif state.get("rank_generators"):
            raise TrainError(f"{last}: written by a run of {len(state['rank_generators'])} "
                             "processes; resume it under torchrun with as many")
        torch.set_rng_state(state["torch_rng"])
        self.history = state["history"]
        self.pos = state.get("epoch_position") or self.pos

    def checkpoint(self) -> None:
        """``last.pt`` (under torchrun every rank calls this at the same step; rank 0
        writes)."""
        ctx, model = self.ctx, self.model
        dd.average_bn_stats(model, ctx)
        extra = {"rank_generators": dd.gather(self.aug.get_state(), ctx)} if ctx.active else {}
        if ctx.main:
            model.cpu()
            save_checkpoint(self.last, model, {"history": self.history},
                            train_config=asdict(self.cfg), history=self.history,
                            optimizer=self.opt.state_dict(),
                            scheduler=self.sched and self.sched.state_dict(), swa=self.swa,
                            generator=self.gen.get_state(),
                            torch_rng=torch.get_rng_state(), quant_stats=stats_state(model),
                            epoch_position=self.pos if self.pos["step"] else None, **extra)
            model.to(self.device)
        dd.barrier(ctx)

    # ----------------------------------------------------------------------- epochs
    def epochs(self, end_epoch: int, signals: dict, checkpoint_seconds: float,
               stop_after_steps: int | None) -> bool:
        """Train up to epoch ``end_epoch``; True when stopped before (a signal, or
        ``stop_after_steps`` optimizer steps in all)."""
        self.steps_done = len(self.history) * self.steps_per_epoch + self.pos["step"]

        def stop_now() -> bool:
            return signals["stop"] or (stop_after_steps is not None
                                       and self.steps_done >= stop_after_steps)
        for epoch in range(len(self.history), end_epoch):
            if self._epoch(epoch, stop_now, checkpoint_seconds):
                return True
            self.checkpoint()
            if dd.agree([stop_now()], self.ctx)[0]:
                return True
        return False

    def _epoch(self, epoch: int, stop_now, checkpoint_seconds: float) -> bool:
        """One epoch from the current position; True when stopped within it (checkpoint
        written)."""
        cfg, pos, ctx = self.cfg, self.pos, self.ctx
        relaxed = epoch < cfg.relaxed_epochs
        set_relaxed(self.model, relaxed)
        if epoch >= self.swa_start:
            for g, scale in zip(self.opt.param_groups, self.lr_scales):
                g["lr"] = cfg.swa_lr * scale
        self.model.train()
        if pos["order"] is None:
            pos["order"] = torch.randperm(len(self.x_train), generator=self.gen)
        t0 = t_saved = time.perf_counter()
        c0 = time.process_time()
        bar = tqdm(range(pos["step"], self.steps_per_epoch), disable=not self.progress,
                   unit="batch", desc=f"{cfg.variant} epoch {epoch + 1}/{cfg.epochs}"
                   + (" (relaxed)" if relaxed else ""),
                   initial=pos["step"], total=self.steps_per_epoch)
        for step in bar:
            idx = pos["order"][step * cfg.batch_size:(step + 1) * cfg.batch_size]
            if ctx.active and len(idx) < ctx.world:   # a last batch too small to share
                pos["step"] = step + 1
                self.steps_done += 1
                continue
            self._step(idx, epoch)
            pos["step"] = step + 1
            self.steps_done += 1
            if step % 20 == 0:
                bar.set_postfix(loss=f"{pos['loss'] / pos['seen']:.3f}",
                                acc=f"{pos['correct'] / pos['seen']:.3f}")
            now = time.perf_counter()
            stop, save = stop_now(), now - t_saved >= checkpoint_seconds
            if ctx.active:                  # every rank stops / saves at the same step
                stop, save = dd.agree([stop, save], ctx)
            if pos["step"] < self.steps_per_epoch and (stop or save):
                pos["seconds"] += now - t0
                pos["cpu_seconds"] = pos.get("cpu_seconds", 0.0) + time.process_time() - c0
                t0 = t_saved = now
                c0 = time.process_time()
                self.checkpoint()
                if stop:
                    bar.close()
                    return True
        bar.close()
        self._end_epoch(epoch, relaxed, pos["seconds"] + time.perf_counter() - t0,
                        pos.get("cpu_seconds", 0.0) + time.process_time() - c0)
        return False

    def _batch(self, idx: torch.Tensor):
        """This rank's share of a batch, augmented, on the device: (images, targets)."""
        cfg = self.cfg
        idx = dd.shard(idx, self.ctx).numpy()
        x = torch.from_numpy(self.x_train[idx]).float()
        if self.det:
            y = [torch.from_numpy(b) for b in self.y_train[idx]]
            if cfg.augment:
                x, y = flip_boxes(x, y, self.aug)
            return x.to(self.device), [b.to(self.device) for b in y]
        y = torch.from_numpy(self.y_train[idx]).long()
        if cfg.augment and self.seg:
            x, y = flip_pairs(x, y, self.aug)
        elif cfg.augment:
            x = augment(x, self.aug, self.flip)
        return x.to(self.device), y.to(self.device)

    def _loss(self, logits: torch.Tensor, y, x: torch.Tensor) -> torch.Tensor:
        """The task's loss, with the teacher's term when distilling."""
        cfg, teacher = self.cfg, self.teacher
        t_logits = None
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(x)
        if self.det and t_logits is not None:
            from .detnet import detection_distillation_loss
            return detection_distillation_loss(self.model, logits, y, teacher, t_logits,
                                               cfg.distill_alpha)
        if self.det:
            from .detnet import detection_loss
            return detection_loss(self.model, logits, y)
        return distillation_loss(logits, y, t_logits, cfg.distill_alpha,
                                 cfg.distill_temperature)

    def _step(self, idx: torch.Tensor, epoch: int) -> None:
        """One optimizer step on the batch ``idx``; its loss and accuracy into ``pos``."""
        x, y = self._batch(idx)
        logits = self.net(x)
        loss = self._loss(logits, y, x)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if epoch < self.swa_start:
            self.sched.step()
        dd.broadcast_collecting_stats(self.collectors, self.ctx)   # rank 0's, while collected
        pos = self.pos
        pos["loss"] += loss.item() * len(y)
        pos["seen"] += len(y)
        if self.seg:     # pixel accuracy, as a fraction of each image's pixels
            pred = dense_logits(logits.detach(), tuple(y.shape[-2:])).argmax(1)
            valid = y != IGNORE_INDEX
            pos["correct"] += float((pred == y)[valid].sum()) / max(
                1, int(valid.sum())) * len(y)
        elif not self.det:   # (detection: mAP per epoch, no per-step figure)
            pos["correct"] += int((logits.argmax(1) == y).sum())

    def _end_epoch(self, epoch: int, relaxed: bool, train_time: float,
                   cpu_time: float) -> None:
        """The epoch's record (global loss and accuracy, the check split's quality), the
        SWA snapshot, one log line."""
        cfg, ctx, check = self.cfg, self.ctx, self.check
        set_relaxed(self.model, False)
        loss_sum, seen, correct = dd.sum_over_ranks(
            [self.pos["loss"], self.pos["seen"], self.pos["correct"]], ctx)
        record = {"epoch": epoch + 1, "relaxed": relaxed, "loss": loss_sum / seen,
                  "train_accuracy": None if self.det else correct / seen,
                  "seconds": train_time, "cpu_seconds": cpu_time,
                  "images_per_s": seen / train_time}
        dd.average_bn_stats(self.model, ctx)
        if epoch >= self.swa_start:
            self.swa = swa_update(self.model, self.swa)
        # every epoch on val; the old protocol skips the last (the full test set follows)
        if (cfg.validation or epoch + 1 < cfg.epochs) and ctx.main:
            res = evaluate(self.model, self.x_check, self.y_check, device=self.device)
            record |= {f"{check}_accuracy": res["accuracy"], f"{check}_images": res["n"]}
            if self.seg:
                record[f"{check}_miou"] = res["miou"]
            if self.det:
                record |= {f"{check}_map50": res["map50"], f"{check}_map": res["map"]}
        self.history.append(record)
        self.pos = _new_epoch_position()
        self._log_epoch(epoch, record, train_time)

    def _log_epoch(self, epoch: int, record: dict, train_time: float) -> None:
        """One line per epoch, also in logs without progress bars."""
        check, where = self.check, f"{record.get(f'{self.check}_images')} {self.check_split}"
        speed = f"({train_time:.0f} s, {record['images_per_s']:.0f} img/s)"
        if self.det and f"{check}_map50" in record:
            tqdm.write(f"epoch {epoch + 1}: loss {record['loss']:.4f}  {check} mAP@0.5 "
                       f"{record[f'{check}_map50']:.4f} mAP {record[f'{check}_map']:.4f} "
                       f"({where} images)  {speed}")
        elif f"{check}_accuracy" in record:
            tqdm.write(f"epoch {epoch + 1}: loss {record['loss']:.4f}  "
                       f"train {record['train_accuracy']:.4f}  "
                       f"{check} {record[f'{check}_accuracy']:.4f}"
                       + (f" mIoU {record[f'{check}_miou']:.4f}" if self.seg else "")
                       + f" ({where} images)  {speed}")

    def stopped(self, interrupted: bool) -> dict:
        """What a run stopped before its last epoch returns (``last.pt`` resumes it)."""
        self.net = None               # DDP's reducer goes before its process group
        dd.finish(self.ctx)
        return {"variant": self.cfg.variant, "stopped_early": True, "history": self.history,
                "steps_done": self.steps_done, "interrupted": interrupted,
                **({"rank": self.ctx.rank} if self.ctx.active else {})}

    # ----------------------------------------------------------------------- the end
    def finish(self, out: Path) -> dict:
        """The finished run: the test set read (once), weight averaging's end, the final
        model and metrics written; returns the metrics."""
        cfg, ctx = self.cfg, self.ctx
        if cfg.validation and ctx.main:
            self.x_test, self.y_test = load_dataset(cfg.dataset, "test", cfg.data_dir,
                                                    cfg.test_limit)
        dd.average_bn_stats(self.model, ctx)
        swa_metrics = self._finish_swa(out) if cfg.swa_epochs else {}
        hashes = dd.gather(dd.state_hash(self.model), ctx)
        if not ctx.main:
            self.net = None           # DDP's reducer goes before its process group
            dd.finish(ctx)
            return {"variant": cfg.variant, "stopped_early": False, "rank": ctx.rank,
                    "history": self.history}
        self.model.cpu().eval()
        metrics = self._metrics(swa_metrics, hashes)
        save_checkpoint(out / f"{cfg.variant}.pt", self.model, {
            k: metrics[k] for k in ("dataset", "protocol", "val_accuracy", "val_images",
                                    "val_miou", "val_map50", "val_map", "test_accuracy",
                                    "test_images", "train_images", "train_seconds", "device",
                                    "test_miou", "test_map50", "test_map", "init")
            if k in metrics} | {"epochs": cfg.epochs})
        (out / "metrics.json").write_text(json.dumps(portable(metrics), indent=2) + "\n")
        self.net = None               # DDP's reducer goes before its process group
        dd.finish(ctx)
        return metrics

    def _finish_swa(self, out: Path) -> dict:
        """The last epoch's own model kept beside (``<variant>_last.pt``), then the mean
        weights loaded with batch-norm statistics recomputed; returns the SWA metrics."""
        cfg, ctx, model, device = self.cfg, self.ctx, self.model, self.device
        last_weights = evaluate(model, self.x_test, self.y_test, device=device) \
            if ctx.main else None
        last_val = evaluate(model, self.x_val, self.y_val, device=device) \
            if cfg.validation and ctx.main else {}
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
        done = swa_finish(model, self.swa, self.x_train, self.progress, device=device)
        if not ctx.main:
            return {}
        quality = ("accuracy", "miou", "map50", "map")
        return {"swa": {"epochs": cfg.swa_epochs, "lr": cfg.swa_lr, "snapshots": self.swa["n"],
                        **done}
                | {f"last_weights_test_{k}": last_weights[k] for k in quality
                   if last_weights.get(k) is not None}
                | {f"last_weights_val_{k}": last_val[k] for k in quality
                   if last_val.get(k) is not None}}

    def _metrics(self, swa_metrics: dict, hashes: list) -> dict:
        """The final validation and test figures (the test set's one reading) and the
        run's record."""
        cfg, ctx, history = self.cfg, self.ctx, self.history
        val_metrics = {}
        if cfg.validation:     # the whole val set (the per-epoch check may be a subset)
            val = evaluate(self.model, self.x_val, self.y_val)
            val_metrics = {f"val_{k}": val[k] for k in ("accuracy", "miou", "map50", "map")
                           if val.get(k) is not None} | {"val_images": val["n"]}
        final = evaluate(self.model, self.x_test, self.y_test)
        history[-1] |= {"test_accuracy": final["accuracy"]}
        task_metrics = {"test_miou": final["miou"],
                        "test_iou_per_class": final["iou_per_class"]} if self.seg else {}
        if self.det:
            task_metrics = {"test_map50": final["map50"], "test_map": final["map"],
                            "decode": self.model.decoder.params()}
        self._log_final(final, val_metrics)
        metrics = {
            "variant": cfg.variant, "stopped_early": False, "dataset": cfg.dataset,
            "model_config": self.model.config,
            "train_config": asdict(cfg), "device": str(self.device),
            "task": self.info.task,
            # which split chose the model: "validation" (per-epoch checks, and any decision
            # on them, on val; test read once here) or "test-checked" (the protocol before)
            "protocol": "validation" if cfg.validation else "test-checked",
            "check_split": self.check_split, **val_metrics,
            "test_accuracy": final["accuracy"], "test_images": final["n"],
            **task_metrics, "train_images": int(len(self.x_train)),
            "num_classes": self.info.num_classes,
            "train_seconds": sum(h["seconds"] for h in history),
            # CPU time of the training process: the fair figure on a shared or paused machine
            "train_cpu_seconds": sum(h.get("cpu_seconds", h["seconds"]) for h in history),
            "torch_threads": torch.get_num_threads(), "history": history, **swa_metrics,
        }
        if self.init_metrics is not None:     # a fine-tuned model: what it started from
            init = self.init_metrics
            metrics["init"] = {"checkpoint": str(cfg.init), "epochs": init.get("epochs"),
                               "test_accuracy": init.get("test_accuracy"),
                               "train_seconds": init.get("train_seconds")}
        if ctx.active:
            metrics["distributed"] = {"world_size": ctx.world, "backend": ctx.backend,
                                      "identical_state_dicts": len(set(hashes)) == 1,
                                      "batch_per_rank": math.ceil(cfg.batch_size / ctx.world)}
        return metrics

    def _log_final(self, final: dict, val_metrics: dict) -> None:
        last, n = self.history[-1], final["n"]
        if self.det:
            tqdm.write(f"epoch {self.cfg.epochs}: loss {last['loss']:.4f}  test mAP@0.5 "
                       f"{final['map50']:.4f} mAP {final['map']:.4f} ({n} images)  "
                       f"({last['seconds']:.0f} s)")
            return
        tqdm.write(f"epoch {self.cfg.epochs}: loss {last['loss']:.4f}  train "
                   f"{last['train_accuracy']:.4f}  "
                   + (f"val {val_metrics['val_accuracy']:.4f} " if val_metrics else "")
                   + f"test {final['accuracy']:.4f} "
                   + (f"mIoU {final['miou']:.4f} " if self.seg else "")
                   + f"({n} images)  ({last['seconds']:.0f} s)")


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
    check_out(out, resume, force, cfg.variant)
    check_config(cfg)
    run = _Run(cfg, out, progress)
    if resume and run.last.exists():
        run.resume()
    end_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    with dd.stop_on_signals() as signals:
        stopped = run.epochs(end_epoch, signals, checkpoint_seconds, stop_after_steps)
    if stopped or len(run.history) < cfg.epochs:
        return run.stopped(bool(signals["stop"]))
    # the run is finished: from here on the test set may be read, once per model
    return run.finish(out)
