"""What every verb of the command line shares: exit codes, argument types, the one-line
parser, and the options that are spelled the same on every verb.

One spelling per meaning, on every verb that has it:

    -o/--out PATH          what the verb writes (a folder, or the file it names)
    -n/--test-images N     how many test images (simulated, checked, shipped, evaluated)
    --dataset NAME         a registered dataset (``groupnet.models.data.DATASETS``)
    --data-dir DIR         where that dataset lies
    --images FILE.npy      test images from a file instead (``--labels`` with them)
    --json / --quiet       one JSON object on stdout / no progress output

Old spellings keep working for one release: they print one deprecation line and act as
the new one (``deprecated``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from groupnet.models.data import DATASETS      # torch-free: the dataset table only

DATASET_NAMES = list(DATASETS)

EXIT_USER_ERROR = 2
EXIT_CHECK_FAILED = 1
EXIT_INTERRUPTED = 130          # 128 + SIGINT, as shells expect


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors printed as one line: every module's subclass of ``UserError``, and the deploy
    driver's own (it runs on boards without this package)."""
    from groupnet.errors import UserError
    from groupnet.hw.driver.groupnet_driver import DriverError
    return (UserError, DriverError)


class Parser(argparse.ArgumentParser):
    """Bad options are one line (what, which option, where the help is), exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ----------------------------------------------------------------------- argument types
def parse_option(text: str) -> tuple[str, object]:
    """``k=2`` -> ("k", 2); values are read as JSON when possible, else kept as strings."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"option '{text}' is not NAME=VALUE")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def number(kind: type, low: float | None = None, high: float | None = None,
           low_open: bool = False, meaning: str = ""):
    """An argparse ``type=``: a ``kind`` number in [low, high] ((low, high] with
    ``low_open``); argparse names the option in its one-line error."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{text}' is not {'an integer' if kind is int else 'a number'}") from None
        if value != value or (low is not None and (value < low or (low_open and value == low))) \
                or (high is not None and value > high):
            lo = "" if low is None else (f"> {low:g}" if low_open else f">= {low:g}")
            hi = "" if high is None else f"<= {high:g}"
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: must be {' and '.join(x for x in (lo, hi) if x)}"
                + (f" ({meaning})" if meaning else ""))
        return value
    parse.__name__ = kind.__name__             # argparse's 'invalid int value' wording
    return parse


POSITIVE = number(float, 0, low_open=True)
COUNT = number(int, 1, meaning="a count of at least one")
PROBABILITY = number(float, 0, 1, low_open=True, meaning="a probability per cycle; 0 would "
                     "never move a beat")
FRACTION = number(float, 0, 1, low_open=True, meaning="a fraction of the board")


def backpressure(text: str) -> str:
    """``sim --backpressure``: 'random' or a probability in (0, 1]."""
    if text == "random":
        return text
    try:
        PROBABILITY(text)
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{err}; or 'random'") from None
    return text


def device(text: str) -> str:
    """``train --device``: auto, cpu, cuda[:N] (cuda only where CUDA is)."""
    if text not in ("auto", "cpu") and not text.startswith("cuda"):
        raise argparse.ArgumentTypeError(f"'{text}' is not auto, cpu or cuda[:N]")
    if text.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: no CUDA device on this machine; "
                                             "use --device cpu (or auto)")
    return text


def jobs(text: str) -> int:
    """``sim --jobs``: a positive count, or 'auto' (the cores this process may run on)."""
    if text == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive number or 'auto'")
    return n


# ------------------------------------------------------------------ the shared options
class Deprecated(argparse.Action):
    """An old spelling: one line on stderr, then it acts as ``new`` (same destination)."""

    def __init__(self, option_strings, dest, new: str, flag: bool = False, **kw):
        self.new = new
        if flag:
            kw.update(nargs=0)
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: {option_string} is deprecated: use {self.new} (the old "
              "spelling goes in the next release)", file=sys.stderr)
        setattr(namespace, self.dest, True if self.nargs == 0 else values)


def deprecated(p: argparse.ArgumentParser, old: str, new: str, dest: str, **kw) -> None:
    """``old`` kept for one release as another spelling of the option ``new``."""
    p.add_argument(old, dest=dest, action=Deprecated, new=new, help=argparse.SUPPRESS, **kw)


def add_out(p: argparse.ArgumentParser, help: str, old: tuple[str, ...] = ()) -> None:
    p.add_argument("-o", "--out", help=help)
    for o in old:
        deprecated(p, o, "-o/--out", "out")


def add_test_images(p: argparse.ArgumentParser, help: str, default: int | None = None,
                    old: tuple[str, ...] = (), zero: bool = False) -> None:
    """``-n/--test-images N`` (``zero``: 0 allowed, meaning none)."""
    kind = number(int, 0) if zero else COUNT
    p.add_argument("-n", "--test-images", type=kind, default=default, metavar="N", help=help)
    for o in old:
        deprecated(p, o, "-n/--test-images", "test_images", type=kind, metavar="N")


def add_data(p: argparse.ArgumentParser, images: bool = False, labels: bool = False,
             dataset_help: str = "test images from this dataset (default: the model's, "
                                 "from its metadata)") -> None:
    """``--dataset``, ``--data-dir`` and (``images``) ``--images``/``--labels``."""
    p.add_argument("--dataset", choices=DATASET_NAMES, help=dataset_help)
    p.add_argument("--data-dir", metavar="DIR",
                   help="where the dataset lies (default: its standard place)")
    if images:
        p.add_argument("--images", metavar="FILE.npy",
                       help="test images (uint8 N x C x H x W) instead of the dataset")
    if labels:
        p.add_argument("--labels", metavar="FILE.npy", help="their classes (one per image)")


def add_reporting(p: argparse.ArgumentParser, quiet: bool = True,
                  json_help: str = "print one JSON object instead of text") -> None:
    """``--json`` (and ``--quiet``) of a verb that reports."""
    p.add_argument("--json", action="store_true", help=json_help)
    if quiet:
        p.add_argument("--quiet", action="store_true", help="no progress output")


def progress_of(args: argparse.Namespace) -> bool:
    return not (getattr(args, "quiet", False) or getattr(args, "json", False))


def check_file_path(path: Path, option: str, error: type[Exception]) -> None:
    """A file to write: not a folder, and no parent of it a file."""
    if path.is_dir():
        raise error(f"{option} {path} is a folder; name the file to write")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise error(f"{option} {path}: {parent} is a file, not a folder")
