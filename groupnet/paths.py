"""Paths in records that are committed (checkpoints' metrics, metrics.json, results
tables): relative to the folder the command ran in, never this machine's absolute path."""

from __future__ import annotations

import os
from pathlib import Path


def portable(obj, root: str | os.PathLike | None = None):
    """``obj`` (dicts, lists, strings, ...) with every absolute path under ``root`` (default:
    the current folder) rewritten relative to it, in POSIX form; other values unchanged."""
    base = Path(root or Path.cwd()).resolve()
    if isinstance(obj, dict):
        return {k: portable(v, base) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(portable(v, base) for v in obj)
    if isinstance(obj, Path):
        return Path(portable(str(obj), base))
    if isinstance(obj, str) and obj.startswith("/") and "\n" not in obj:
        path = Path(obj)
        if path == base or base in path.parents:
            return path.relative_to(base).as_posix() or "."
    return obj
