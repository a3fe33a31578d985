"""The ``groupnet`` command: a thin layer over library functions, one verb per lifecycle step.

    groupnet list                                   registered model variants
    groupnet train VARIANT --epochs N -o DIR        train on real data
    groupnet zoo [list|show NAME]                   the committed trained models (index)
    groupnet zoo add CHECKPOINT --name NAME         publish a trained checkpoint into it
    groupnet eval CHECKPOINT|MODEL.onnx [--json]    test accuracy
    groupnet export CHECKPOINT -o MODEL.onnx        QONNX export + bit-exact check
    groupnet boards                                 the board table
    groupnet build MODEL|CHECKPOINT|BUILD_DIR ...   FINN dataflow build (estimates, IP, ...)
    groupnet report BUILD_DIR [--synth]             layers/branches table and picture (+ Yosys)
    groupnet sim BUILD_DIR -n N [--json]            cycle-accurate RTL simulation (Verilator)
    groupnet deploy BUILD_DIR [-o DIR]              deploy folder for a PYNQ board (+ sim backend)
    groupnet bitstream BUILD_DIR [--clock-mhz F]    ECP5 bitstream with the open tools (ULX3S)
    groupnet explore SPEC.yaml [--workers N]        design-space sweep -> Pareto front per board

Each verb's module registers its own options; the options every verb shares are spelled
once, in ``options``. User errors (bad path, unknown variant, wrong checkpoint, ...) print
one line and exit 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from . import build, deploy, explore, models, sim
from .models import task_dataset
from .options import (DATASET_NAMES, EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_USER_ERROR,
                      Parser, user_errors)

__all__ = ["main", "build_parser", "task_dataset", "DATASET_NAMES", "EXIT_CHECK_FAILED",
           "EXIT_INTERRUPTED", "EXIT_USER_ERROR"]

VERBS = (models, build, sim, deploy, explore)       # in the order `--help` lists them


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="groupnet", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=Parser)
    for verb in VERBS:
        verb.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    warnings.filterwarnings("ignore", category=UserWarning)
    try:
        return args.fn(args)
    except user_errors() as err:
        print(f"groupnet {args.verb}: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"groupnet {args.verb}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:          # `groupnet zoo | head`: the reader went away
        sys.stdout = None
        return 0
