"""Output folders: what ``--force`` may replace, and one process per folder.

Every verb that writes a folder (build, deploy, train, explore) marks it with
``.groupnet`` (JSON: ``{"kind": "build", ...}``). Rules, checked before anything is
touched:

- a non-empty folder without the marker of its kind is refused even with ``--force``
  (the tool never deletes what it did not write); a build folder of an older version
  (``build.json`` + ``dataflow.onnx`` or ``intermediate_models/``, no marker) counts as
  a build;
- an output folder that is, contains or lies inside an input (the model, the build being
  deployed, the current folder) is refused;
- ``--force`` moves the old folder aside (a hidden sibling) and deletes it only once the
  new work succeeded; on an error or Ctrl-C the old folder is put back;
- a lock file (``.groupnet.lock``, ``flock`` + the pid) keeps a second process out; the
  kernel drops the lock of a killed process, so it never stays stuck.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from pathlib import Path

from groupnet.errors import UserError

MARKER = ".groupnet"
LOCK = ".groupnet.lock"


class OutputFolderError(UserError, RuntimeError):
    """An output folder that may not be written or replaced."""


def read_marker(folder: str | os.PathLike) -> dict | None:
    path = Path(folder) / MARKER
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(folder: str | os.PathLike, kind: str, **extra) -> Path:
    path = Path(folder) / MARKER
    path.write_text(json.dumps({"kind": kind, "written_by": "groupnet",
                                "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra})
                    + "\n")
    return path


def _is_legacy(folder: Path, kind: str) -> bool:
    """A folder an older version wrote before markers existed."""
    if kind == "build":
        return (folder / "build.json").is_file() and (
            (folder / "dataflow.onnx").is_file() or (folder / "intermediate_models").is_dir())
    if kind == "deploy":
        return (folder / "io_spec.json").is_file() and (folder / "driver.py").is_file()
    if kind == "train":
        return any(folder.glob("*.pt")) and (folder / "last.pt").is_file()
    if kind == "explore":
        return (folder / "results.jsonl").is_file() and (folder / "spec.yaml").is_file()
    return False


def kind_of(folder: str | os.PathLike) -> str | None:
    """The kind of output folder ``folder`` is (marker, else an older version's layout)."""
    folder = Path(folder)
    marker = read_marker(folder)
    if marker and marker.get("kind"):
        return str(marker["kind"])
    for kind in ("build", "deploy", "train", "explore"):
        if _is_legacy(folder, kind):
            return kind
    return None


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_output(folder: str | os.PathLike, kind: str, option: str = "--out",
                 inputs: tuple = (), foreign_ok: bool = False) -> bool:
    """Check, before anything is touched, that ``folder`` may be written as a ``kind``
    folder (see the module doc): ``inputs`` (files or folders the command reads) must not
    be it or lie in it. ``foreign_ok``: unmarked content is allowed (and kept: train
    writes beside what is there). Returns whether the folder already holds content of its
    kind (the caller then asks for --force or --resume)."""
    out = Path(os.path.abspath(folder))
    for p in [out, *out.parents]:
        if p.exists() and not p.is_dir():
            raise OutputFolderError(
                f"{option} {folder}: {p} is a file, not a folder; pass a folder path")
    cwd = Path.cwd().resolve()
    real = out.resolve()
    if _within(cwd, real):
        where = "the current folder" if real == cwd else "a folder above the current one"
        raise OutputFolderError(f"{option} {folder}: that is {where}; pass a new subfolder, "
                                f"e.g. {option} {Path(folder) / (kind + '_out')}")
    for item in inputs:
        if item is None:
            continue
        src = Path(item).resolve()
        if _within(src, real):
            raise OutputFolderError(f"{option} {folder}: it {'is' if src == real else 'holds'} "
                                    f"the input {item}; write to another folder")
    if out.is_dir() and any(p.name != LOCK for p in out.iterdir()):
        found = kind_of(out)
        if found != kind and not (foreign_ok and found is None):
            what = (f"a {found} folder" if found else
                    "files this tool did not write (" + ", ".join(
                        sorted(p.name for p in out.iterdir())[:3]) + (", ..." if len(
                            list(out.iterdir())) > 3 else "") + ")")
            raise OutputFolderError(
                f"{option} {folder} holds {what}; --force replaces only a {kind} folder "
                f"this tool wrote: pass a new or empty folder")
        return True
    return False


class _Lock:
    def __init__(self, fd: int, path: Path):
        self.fd, self.path = fd, path

    def release(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
            self.fd = -1


def lock(folder: str | os.PathLike, option: str = "--out") -> _Lock:
    """Hold ``folder/.groupnet.lock`` (created) for this process, or refuse in one line
    naming the process that holds it."""
    path = Path(folder) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            pid = os.read(fd, 32).decode().strip() or "?"
        finally:
            os.close(fd)
        raise OutputFolderError(f"{option} {folder} is in use by another groupnet process "
                                f"(pid {pid}); wait for it to end or use another folder") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return _Lock(fd, path)


@contextlib.contextmanager
def output_folder(folder: str | os.PathLike, kind: str, replace: bool = False,
                  option: str = "--out", **marker):
    """Hold ``folder`` for this process while the body writes it, marked as ``kind``.
    ``replace``: its current content (checked by :func:`check_output`) is moved to a
    hidden sibling first, deleted when the body succeeds and put back when it fails."""
    out = Path(folder)
    old = None
    held = None
    if replace and out.is_dir() and any(p.name != LOCK for p in out.iterdir()):
        held = lock(out, option)            # nobody else is writing it
        old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
    try:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputFolderError(f"{option} {folder}: cannot create the folder "
                                    f"({err.strerror})") from None
        mine = lock(out, option)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    finally:
        if held is not None:
            held.release()
    try:
        write_marker(out, kind, **marker)
        yield out
    except BaseException:
        mine.release()
        if old is not None:
            shutil.rmtree(out, ignore_errors=True)
            os.replace(old, out)
        raise
    mine.release()
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
