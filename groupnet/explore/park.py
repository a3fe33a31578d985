"""A sweep's training kept across machines: the spec's ``park`` folder (committed).

A sweep folder (``runs/explore/<name>``) lives on one machine. With ``park: FOLDER`` in the
spec, what training produced is also kept in FOLDER, which can be committed:

    <variant>_<key>.pt             a finished point's checkpoint, and beside it
    <variant>_<key>.metrics.json   its metrics (what ``reuse`` matches: the point is not
                                   trained again, on this machine or another)
    <variant>_<key>.last.pt        an unfinished training's resume point: a point whose own
                                   ``train/last.pt`` is missing starts from it

A finished training is parked as it finishes; ``groupnet explore SPEC --park`` also parks the
resume points of trainings still running or stopped (before a machine goes away).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .spec import Point, Spec


def parked(spec: Spec, point: Point, suffix: str) -> Path:
    return Path(spec.park) / f"{point.variant}_{point.key}{suffix}"


def _copy(src: Path, dst: Path) -> None:
    """Copy through a temporary file: a reader never sees half a checkpoint."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def restore(spec: Spec, point: Point, train_dir: Path) -> bool:
    """Start an unfinished training from its parked resume point (when it has none of its
    own); True when one was taken."""
    if not spec.park or (train_dir / "last.pt").exists():
        return False
    src = parked(spec, point, ".last.pt")
    if not src.is_file():
        return False
    _copy(src, train_dir / "last.pt")
    return True


def park_finished(spec: Spec, point: Point, train_dir: Path) -> bool:
    """Keep a finished training (checkpoint + metrics) in the park folder; its resume point
    there is no longer needed."""
    final, metrics = train_dir / f"{point.variant}.pt", train_dir / "metrics.json"
    if not spec.park or not (final.is_file() and metrics.is_file()):
        return False
    _copy(metrics, parked(spec, point, ".metrics.json"))
    _copy(final, parked(spec, point, ".pt"))
    parked(spec, point, ".last.pt").unlink(missing_ok=True)
    return True


def park_sweep(spec: Spec, out: Path) -> dict:
    """Park every point of the spec found in the sweep folder ``out``: finished trainings,
    and the resume points of unfinished ones. Returns counts per kind."""
    if not spec.park:
        from .spec import SpecError
        raise SpecError(f"{spec.path}: park: not set (the folder that keeps the sweep's "
                        "trainings, e.g. park: models/sweeps/<name>)")
    counts = {"finished": 0, "resume": 0, "already": 0}
    for point in spec.points:
        train_dir = Path(out) / "points" / point.key / "train"
        if parked(spec, point, ".pt").is_file() and parked(spec, point,
                                                           ".metrics.json").is_file():
            counts["already"] += 1
        elif park_finished(spec, point, train_dir):
            counts["finished"] += 1
        elif (train_dir / "last.pt").is_file():
            _copy(train_dir / "last.pt", parked(spec, point, ".last.pt"))
            counts["resume"] += 1
    return counts
