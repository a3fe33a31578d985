"""One design point, start to end: train (or take a trained checkpoint), export, build for
each board, estimates; and the optional RTL simulation of a built point.

Runs inside a sweep worker (a Dask worker process, or the sweep's own process when
serial). Everything a point writes lies under ``OUT/points/<key>/``:

    attempt.json            the process working on it (pid, its worker's pid, host,
                            start)
    train/                  the training run (``last.pt`` every minute: a retried point
                            resumes there), or nothing when a checkpoint was reused
    model.onnx              the exported QONNX model
    <board>-<eval key>/     the build for that board (through the spec's ``build_to``)
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import platform
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from .spec import FILE_SETTINGS, Point, Spec, files_by_content, train_identity

QUALITY = (("test_map50", "mAP@0.5"), ("test_miou", "mIoU"), ("test_accuracy", "accuracy"))


def shape_of(variant: str, model: dict) -> dict:
    """K, width and aggregation width of a point, defaults filled in (older checkpoints
    record only the options they were given)."""
    from groupnet.models import model_defaults
    m = {**model_defaults(variant), **model}
    k = m.get("k", 1)
    return {"k": k, "width": m.get("width"), "agg_bits": m.get("agg_bits") if k > 1 else None}


def point_dir(out: Path, point: Point) -> Path:
    return Path(out) / "points" / point.key


def _recorded_train(metrics: dict) -> dict | None:
    """A finished run's training settings as a point's identity (None if not recorded)."""
    tc = metrics.get("train_config")
    if not tc:
        return None
    return files_by_content(train_identity(tc))


def find_reusable(point: Point, folders: list[str]) -> Path | None:
    """A trained checkpoint in ``folders`` whose recorded model and training settings are
    the point's (``NAME.pt`` with ``NAME.metrics.json`` beside it, as the zoo keeps them,
    or a run folder's ``VARIANT.pt`` + ``metrics.json``)."""
    return next(matching_checkpoints(point, folders), None)


def matching_checkpoints(point: Point, folders: list[str]) -> Iterator[Path]:
    """Every checkpoint in ``folders`` with the point's recorded settings (find_reusable's
    candidates, in its order): a weight-averaged run's last-epoch model matches too."""
    for folder in folders:
        for metrics_file in sorted(Path(folder).rglob("*metrics.json")):
            try:
                m = json.loads(metrics_file.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            mc = dict(m.get("model_config") or {})
            if mc.pop("variant", None) != point.variant or mc != point.model:
                continue
            if m.get("stopped_early") or _recorded_train(m) != point.train:
                continue
            name = metrics_file.name
            ckpt = (metrics_file.with_name(name[:-len(".metrics.json")] + ".pt")
                    if name.endswith(".metrics.json") and name != "metrics.json"
                    else metrics_file.with_name(f"{point.variant}.pt"))
            if ckpt.is_file():
                yield ckpt


def _metrics_of(checkpoint: Path) -> dict:
    beside = [checkpoint.with_name(checkpoint.stem + ".metrics.json"),
              checkpoint.with_name("metrics.json")]
    for f in beside:
        if f.is_file():
            return json.loads(f.read_text())
    from groupnet.models.checkpoint import read_checkpoint
    return read_checkpoint(checkpoint).get("metrics", {})


def train_point(spec: Spec, point: Point, folder: Path) -> Path:
    """Train the point in ``folder`` (resuming its ``last.pt`` if a previous attempt left
    one); returns the final checkpoint."""
    from groupnet.models.train import TrainConfig, train

    from .park import park_finished, restore
    final = folder / f"{point.variant}.pt"
    if final.is_file() and (folder / "metrics.json").is_file():
        park_finished(spec, point, folder)
        return final
    if restore(spec, point, folder):
        print(f"resuming from the parked {point.variant}_{point.key}.last.pt")
    # the point's settings, with the teacher's / init's path (the key holds its content)
    settings = {**spec.train, **point.train, **{k: spec.train.get(k) for k in FILE_SETTINGS}}
    options = {k: v for k, v in point.model.items() if k != "dataset"}
    cfg = TrainConfig(variant=point.variant, dataset=spec.dataset, overrides=options,
                      **settings)
    metrics = train(cfg, folder, resume=(folder / "last.pt").exists(), progress=False,
                    checkpoint_seconds=60.0)
    if metrics["stopped_early"]:    # Ctrl-C / SIGTERM while training: stop the sweep (the
        raise KeyboardInterrupt     # point resumes from last.pt next time; not recorded)
    park_finished(spec, point, folder)
    return final


def evaluate_point(spec: Spec, point: Point, out: str | Path, boards: list[str],
                   threads: int | None = 1) -> list[dict]:
    """Train/reuse, export, and build ``point`` for each of ``boards``; one row per board.
    A board the network does not fit is a row with status ``nofit`` (not a failure); a
    float model (no hardware) is one row with status ``reference``, and so is every model
    of a spec without boards, with status ``trained``. What training and the
    builds print goes to the point's ``log.txt``."""
    folder = point_dir(out, point)
    folder.mkdir(parents=True, exist_ok=True)
    # line-buffered: a training's per-epoch lines show while it runs
    with open(folder / "log.txt", "a", buffering=1) as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _evaluate(spec, point, folder, boards, threads)


def _evaluate(spec: Spec, point: Point, folder: Path, boards: list[str],
              threads: int | None) -> list[dict]:
    import torch

    from groupnet.flow import estimate
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.export import export_qonnx
    from groupnet.models.groupnet import op_counts

    if threads:
        torch.set_num_threads(threads)
    parent = multiprocessing.parent_process()     # the Dask worker, when isolated
    (folder / "attempt.json").write_text(json.dumps(
        {"pid": os.getpid(), "worker_pid": parent.pid if parent else os.getpid(),
         "host": platform.node(), "started": time.time(),
         "point": point.as_dict()}, indent=1))
    t0 = time.time()
    if point.train.get("untrained"):
        from groupnet.models import create_model
        torch.manual_seed(0)
        model = create_model(point.variant, **point.model).eval()
        ckpt, origin, metrics, payload = None, "untrained", {}, {}
    else:
        if point.checkpoint:
            ckpt, origin = Path(point.checkpoint), "given"
        elif (found := find_reusable(point, spec.reuse_folders)) is not None:
            ckpt, origin = found, "reused"
        else:
            ckpt, origin = train_point(spec, point, folder / "train"), "trained"
        metrics = _metrics_of(ckpt)
        model, payload = load_checkpoint(ckpt)
    metric, name = next(((metrics[k], label) for k, label in QUALITY if k in metrics),
                        (None, "accuracy"))
    base = {"point": point.key, "label": point.label, "variant": point.variant,
            "model": point.model, "train": point.train, "checkpoint": str(ckpt) if ckpt else None,
            "origin": origin, "quality": metric, "metric": name,
            "test_images": metrics.get("test_images"),
            # which split chose the model (models/train.py): validation, or test-checked
            # (trained before the validation protocol); its validation accuracy if any
            "protocol": metrics.get("protocol", "test-checked"),
            "val_quality": next((metrics[f"val_{k[5:]}"] for k, _ in QUALITY
                                 if f"val_{k[5:]}" in metrics), None),
            "train_seconds": metrics.get("train_seconds"),
            **shape_of(point.variant, point.model)}
    if getattr(model, "precision", "binary") == "fp":
        return [{**base, "key": spec.evaluation_key(point, "-"), "board": "-",
                 "status": "reference", "seconds": time.time() - t0}]
    base["binary_macs"] = op_counts(model)["binary"]
    if not spec.boards:           # a spec that trains only (boards: []): one board-less row
        return [{**base, "key": spec.evaluation_key(point, "-"), "board": "-",
                 "status": "trained", "seconds": time.time() - t0}]
    onnx = folder / "model.onnx"
    if not onnx.is_file():
        export_qonnx(model, onnx, metrics=payload.get("metrics"), force=True)
    rows = []
    for board in boards:
        key = spec.evaluation_key(point, board)
        build_dir = folder / f"{board}-{key}"
        row = {**base, "key": key, "board": board, "build": str(build_dir)}
        t1 = time.time()
        est = estimate(onnx, board, build_dir, verify_images=spec.verify,
                       to_step=spec.build_to, **_fold_args(spec))
        if not est["fits"]:
            rows.append({**row, "status": "nofit", "error": est["error"],
                         "seconds": time.time() - t1})
            continue
        rows.append({**row, "status": "ok", "fps_est": est["fps"], "lut": est["lut"],
                     "bram18": est["bram18"], "dsp": est["dsp"],
                     "lut_pct": est["utilization"]["lut"],
                     "latency_us": est["latency_us"], "bottleneck": est["bottleneck"],
                     "clock_mhz": est["clock_mhz"], "seconds": time.time() - t1})
    return rows


def _fold_args(spec: Spec) -> dict:
    return ({"target_fps": spec.fold["target_fps"]} if "target_fps" in spec.fold
            else {"budget": spec.fold["budget"]})


def simulate_row(row: dict, frames: int) -> dict:
    """Verilator simulation of a built row on ``frames`` real test images."""
    from groupnet.flow import test_images
    from groupnet.hw.sim.run import simulate
    t0 = time.time()
    images, _ = test_images(row["build"], frames)
    res = simulate(row["build"], images)
    return {"key": row["key"], "sim_fps": res["fps"],
            "sim_cycles_per_frame": res["cycles_per_frame"],
            "bound_cycles_per_frame": res["bound_cycles_per_frame"],
            "bit_exact": bool(res["bit_exact"]), "frames": frames,
            "seconds": time.time() - t0}

