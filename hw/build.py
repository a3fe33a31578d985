"""The build runner: config, output layout, step loop with resume, verification.

Output folder (fixed layout, tested)::

    DIR/build.json                    resolved config, toolchain, step list
    DIR/input.onnx                    the QONNX model the build started from
    DIR/intermediate_models/NN_<step>.onnx   model after each step (resume from any step)
    DIR/parent.onnx                   host part + the dataflow partition node
    DIR/dataflow.onnx                 the HW-layer model (specialized, folded)
    DIR/folding.json                  folding used (FINN format; feed back with --folding)
    DIR/report/estimates.json         cycles, FPS, latency, resources per layer and total
    DIR/report/verification.json      bit-exactness checks of the Python execution
    DIR/report/time_per_step.json     seconds per step
    DIR/report/status.json            running | complete | stopped (where, why) | failed
    DIR/report/build.log              FINN's and qonnx's log messages and warnings
    DIR/partitions/, DIR/finn_tmp/    FINN's partition files and scratch
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import sys
import time
import traceback
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from groupnet.errors import UserError
from groupnet.outdir import check_output, output_folder

from .boards import get_board
from .context import (DEFAULT_STEPS, RTL_LAYERS, Build, BuildConfig, BuildContext,  # noqa: F401
                      BuildError, BuildPaths, read_onnx, write_json)
from .fast_qonnx import fast_bookkeeping
from .finn_env import ToolMissing, prepare, toolchain
from .steps import STEPS, VERIFY_AFTER, VIVADO_STEPS, register_rtl_variants
from .verify import VerifyError, check_step, reference_scores


def _select_steps(cfg: BuildConfig) -> list[tuple[int, str]]:
    for name in (cfg.from_step, cfg.to_step, *cfg.steps):
        if name is not None and name not in STEPS:
            raise BuildError(f"unknown step '{name}'; steps: {', '.join(STEPS)}")
    order = [(i, s) for i, s in enumerate(STEPS) if s in cfg.steps]
    names = [s for _, s in order]
    start = names.index(cfg.from_step) if cfg.from_step else 0
    stop = names.index(cfg.to_step) + 1 if cfg.to_step else len(names)
    if stop <= start:
        raise BuildError(f"--to-step {cfg.to_step} comes before --from-step {cfg.from_step}")
    return order[start:stop]


def file_sha256(path: str | Path) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_resume(cfg: BuildConfig, paths: BuildPaths, source: Path) -> None:
    """A resumed build continues the same model, board and clock, or is refused."""
    if not paths.config.exists():
        raise BuildError(f"{paths.root}: no build to resume (--from-step needs an "
                         "earlier build in --out)")
    earlier = Build.open(paths.root, need=())
    board = get_board(cfg.board)
    clock = cfg.clock_mhz or board.clock_mhz
    if (earlier.board.name, earlier.clock_mhz) != (board.name, clock):
        raise BuildError(
            f"{paths.root} was built for {earlier.board.name} at {earlier.clock_mhz:g} "
            f"MHz; a resumed build cannot change to {board.name} at {clock:g} MHz (its "
            "earlier steps used that part and clock): build into a new --out, or pass "
            "--force without --from-step to start over")
    _check_resumed_folding(cfg, earlier.record.get("config", {}), paths)
    recorded = earlier.record.get("source", {}).get("sha256")
    if recorded is None and paths.input.is_file() and source.suffix == ".onnx":
        recorded = file_sha256(paths.input)         # a build of an older version
    if recorded is not None and recorded != file_sha256(source):
        raise BuildError(
            f"{paths.root} was built from another model than {source} (SHA-256 "
            f"{recorded[:12]}... recorded in build.json); resume it with the same model, or "
            "build this one into a new --out (or --force without --from-step)")


# options the folding step decides by: a resume after it keeps the earlier ones
FOLDING_OPTIONS = (("target_fps", "--target-fps"), ("budget", "--budget"),
                   ("folding", "--folding"), ("rtl_layers", "--rtl-layers"))


def _check_resumed_folding(cfg: BuildConfig, before: dict, paths: BuildPaths) -> None:
    """Resuming after the folding step keeps the earlier folding: options left at their
    defaults take the earlier build's values; another value given is refused (it would
    be ignored), naming the option."""
    names = list(STEPS)
    if not before or names.index(cfg.from_step) <= names.index("folding"):
        return
    defaults = {f.name: f.default for f in fields(BuildConfig)}
    for key, option in FOLDING_OPTIONS:
        if key not in before or before[key] == getattr(cfg, key):
            continue
        if getattr(cfg, key) == defaults[key]:
            setattr(cfg, key, before[key])
        else:
            was = f"{option} {before[key]}" if before[key] is not None else f"no {option}"
            raise BuildError(
                f"{paths.root} was folded with {was}; resuming from '{cfg.from_step}' keeps "
                f"that folding: resume with --from-step folding to fold again with {option} "
                f"{getattr(cfg, key)}, or build into a new --out")


def _prepare_out(cfg: BuildConfig, paths: BuildPaths, source: Path) -> bool:
    """Check --out before anything is touched; returns whether an earlier build there is
    replaced (--force)."""
    existing = check_output(paths.root, "build", inputs=(cfg.model, source))
    if cfg.from_step:
        _check_resume(cfg, paths, source)
        return False
    if existing and not cfg.force:
        raise BuildError(f"{paths.root} already holds a build; pass --force to replace it "
                         "or --from-step STEP to resume it")
    return existing


def run_build(cfg: BuildConfig, images: np.ndarray | None = None,
              progress: bool = True, source: str | Path | None = None) -> dict:
    """Run the build; returns the final status dict (also in report/status.json).

    ``images``: uint8 NCHW test images for ``cfg.verify`` (the caller loads them: ``hw``
    does not read datasets). ``progress``: print one line per step (always logged).
    ``source``: the file the user named (a checkpoint exported to ``cfg.model``; default
    ``cfg.model``): its SHA-256 in build.json, checked when the build is resumed.

    ``cfg.out`` is checked before anything is touched (``groupnet.outdir``): only a build
    folder is replaced (``cfg.force``), the old one is deleted once the new one is
    complete or stopped, and put back when the build fails; one process per folder.
    """
    board = get_board(cfg.board)
    if not Path(cfg.model).is_file():
        raise BuildError(f"{cfg.model}: model file not found (make one with "
                         "`groupnet export CHECKPOINT -o MODEL.onnx`)")
    if cfg.folding is None and cfg.target_fps is None and not 0 < cfg.budget <= 1:
        raise BuildError(f"--budget is a fraction of the board in (0, 1], got {cfg.budget}")
    for option, value in (("--clock-mhz", cfg.clock_mhz), ("--target-fps", cfg.target_fps)):
        if value is not None and not value > 0:
            raise BuildError(f"{option} must be > 0, got {value:g}")
    if cfg.folding is not None:                # before the first expensive step
        from .folding import FoldingError, check_folding_file
        try:
            check_folding_file(cfg.folding)
        except FoldingError as err:
            raise BuildError(f"--folding {err}") from None
    if cfg.rtl_layers not in RTL_LAYERS:
        raise BuildError(f"rtl_layers must be one of {', '.join(RTL_LAYERS)}, "
                         f"got '{cfg.rtl_layers}'")
    paths = BuildPaths(Path(cfg.out))
    source = Path(source or cfg.model)
    order = _select_steps(cfg)
    replace = _prepare_out(cfg, paths, source)
    with output_folder(paths.root, "build", replace=replace):
        for folder in (paths.intermediate, paths.report, paths.partitions):
            folder.mkdir(exist_ok=True)
        status = _run_in(cfg, board, paths, order, images, progress, source)
        _note_target(cfg, paths, status)
        return status


def _note_target(cfg: BuildConfig, paths: BuildPaths, status: dict) -> None:
    """--target-fps: whether the estimates reach it, in estimates.json and the status."""
    if cfg.target_fps is None or not paths.estimates.is_file():
        return
    est = json.loads(paths.estimates.read_text())
    est["target_fps"] = cfg.target_fps
    est["target_met"] = bool(est["fps"] >= cfg.target_fps)
    write_json(paths.estimates, est)
    status.update(target_fps=cfg.target_fps, target_met=est["target_met"])
    write_json(paths.status, status)


def _resume_model(cfg: BuildConfig, paths: BuildPaths, index: int):
    """The model the step before ``cfg.from_step`` saved, or a one-line refusal naming
    the step to resume from."""
    names = list(STEPS)
    saved = {int(p.name[:2]): p for p in paths.intermediate.glob("[0-9][0-9]_*.onnx")}
    earlier = [i for i, s in enumerate(names) if i < index and s in cfg.steps]
    if earlier and earlier[-1] not in saved:
        done = [i for i in earlier if i in saved]
        nxt = next((s for i, s in enumerate(names) if i > (done[-1] if done else -1)
                    and s in cfg.steps), None)
        hint = (f"resume with --from-step {nxt}" if done else
                "build it from the start (without --from-step)")
        raise BuildError(f"{paths.root}: step '{names[earlier[-1]]}' (before "
                         f"'{cfg.from_step}') has not run there; {hint}")
    if not earlier:
        shutil.copy(cfg.model, paths.input)
        return read_onnx(cfg.model)
    model = read_onnx(saved[earlier[-1]])
    register_rtl_variants(model)
    return model


def _run_in(cfg: BuildConfig, board, paths: BuildPaths, order, images, progress: bool,
            source: Path) -> dict:
    prepare(paths.finn_tmp)
    ctx = BuildContext(cfg, board, paths, cfg.clock_mhz or board.clock_mhz)
    if cfg.verify:
        if images is None or not len(images):
            raise BuildError("--verify needs test images")
        ctx.images = images

    if cfg.from_step:
        model = _resume_model(cfg, paths, order[0][0])
        if paths.reference.exists():
            ctx.reference = np.load(paths.reference)
    else:
        model = read_onnx(cfg.model)
        shutil.copy(cfg.model, paths.input)
    tools = toolchain()
    write_json(paths.config, {"config": asdict(cfg), "board": board.as_dict(),
                               "clock_mhz": ctx.clock_mhz, "steps": [s for _, s in order],
                               "toolchain": {"vivado": tools.vivado, "vitis_hls": tools.vitis_hls},
                               "python": platform.python_version(),
                               "source": {"path": str(source), "sha256": file_sha256(source)}})

    terminal = sys.stdout if progress else None
    with capture_logs(paths.report / "build.log"), fast_bookkeeping(), \
            contextlib.redirect_stdout(open(paths.report / "build.log", "a")) as log:
        try:
            return _run_steps(model, ctx, order, tools, terminal, log)
        finally:
            log.close()


def _run_steps(model, ctx: BuildContext, order, tools, terminal, log) -> dict:
    cfg, paths, board = ctx.cfg, ctx.paths, ctx.board

    def say(msg: str) -> None:
        print(msg, file=log, flush=True)
        if terminal is not None:
            print(msg, file=terminal, flush=True)

    times = json.loads(paths.times.read_text()) if paths.times.exists() else {}
    verification = (json.loads(paths.verification.read_text())
                    if paths.verification.exists() else {})
    status = {"state": "running", "board": board.name, "out": str(paths.root),
              "pid": os.getpid()}
    write_json(paths.status, status)
    for index, name in order:
        if name in VIVADO_STEPS and (board.is_ecp5 or not tools.available):
            reason = (f"{board.name} is an ECP5 board: FINN's Vivado steps do not apply; its "
                      f"bitstream comes from the open flow: `groupnet bitstream {paths.root}`"
                      if board.is_ecp5 else tools.why_missing())
            status = {"state": "stopped", "stopped_before": name, "reason": reason,
                      "completed": [s for _, s in order if s not in VIVADO_STEPS
                                    and _index(order, s) < _index(order, name)]}
            say(f"stopped before '{name}': {reason}")
            break
        say(f"[{index:02d}] {name} ...")
        write_json(paths.status, {**status, "step": name})
        t0 = time.perf_counter()
        try:
            model = STEPS[name](model, ctx)
            times[name] = round(time.perf_counter() - t0, 3)
            model.save(str(paths.step_model(index, name)))
            write_json(paths.times, times)
            if cfg.verify and name in VERIFY_AFTER:
                _verify(model, ctx, name, verification, say)
        except ToolMissing as err:
            status = {"state": "stopped", "stopped_before": name, "reason": str(err)}
            break
        except BaseException as err:        # also Ctrl-C: never leave "running" behind
            status = {"state": "failed", "failed_step": name,
                      "error": f"{type(err).__name__}: {err}",
                      "traceback": traceback.format_exc()}
            write_json(paths.status, status)
            raise
    else:
        status = {"state": "complete"}
    status.update({"board": board.name, "out": str(paths.root),
                   "seconds": round(sum(times.values()), 3)})
    write_json(paths.status, status)
    return status


@contextlib.contextmanager
def capture_logs(path: Path):
    """Send FINN's/qonnx's log records and Python warnings to the build's log file
    instead of the terminal, for the duration of the build."""
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(n) for n in ("finn", "finn_logger", "qonnx", "py.warnings")]
    saved = [(lg.propagate, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
        lg.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for lg, (prop, level) in zip(loggers, saved):
            lg.removeHandler(handler)
            lg.propagate, lg.level = prop, level
        handler.close()


def _verify(model, ctx: BuildContext, name: str, verification: dict, say) -> None:
    """Python execution after step ``name`` against the prepared model, on the images."""
    paths = ctx.paths
    if name == "prepare":
        ctx.reference = reference_scores(model, ctx.images)
        np.save(paths.reference, ctx.reference)
    # the dataflow partition is checked through its parent (host part + partition)
    target = ModelWrapper(str(paths.parent)) if name == "dataflow_partition" else model
    result = check_step(target, ctx.images, ctx.reference)
    verification[name] = result
    write_json(paths.verification, verification)
    say(f"     verify after {name}: "
        f"{'bit-exact' if result['bit_exact'] else 'MISMATCH'} on {result['n']} images")
    if not result["bit_exact"]:
        raise VerifyError(f"Python execution after '{name}' differs from the QONNX model on "
                          f"images {result['mismatched_images']}")


def _index(order, name) -> int:
    return [s for _, s in order].index(name)
