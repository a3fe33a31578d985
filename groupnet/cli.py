"""The ``groupnet`` command: a thin layer over library functions, one verb per lifecycle step.

    groupnet list                                   registered model variants
    groupnet train VARIANT --epochs N --out DIR     train on real data
    groupnet eval CHECKPOINT|MODEL.onnx [--json]    test accuracy
    groupnet export CHECKPOINT -o MODEL.onnx        QONNX export + bit-exact check
    groupnet boards                                 the board table
    groupnet build MODEL|CHECKPOINT|BUILD_DIR ...   FINN dataflow build (estimates, IP, ...)
    groupnet report BUILD_DIR [--synth]             layers/branches table and picture (+ Yosys)
    groupnet sim BUILD_DIR --frames N [--json]      cycle-accurate RTL simulation (Verilator)
    groupnet deploy BUILD_DIR [-o DIR]              deploy folder for a PYNQ board (+ sim backend)
    groupnet bitstream BUILD_DIR [--clock-mhz F]    ECP5 bitstream with the open tools (ULX3S)
    groupnet explore SPEC.yaml [--workers N]        design-space sweep -> Pareto front per board

User errors (bad path, unknown variant, wrong checkpoint, ...) print one line and exit 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import warnings
from pathlib import Path

# models.data.DATASETS' names (importing it here would load torch for every command; a
# test checks the two lists agree)
DATASET_NAMES = ["fashion-mnist", "mnist", "cifar10", "fashion-mnist-scenes", "voc2012",
                 "fashion-mnist-boxes", "voc-detection", "coco"]

EXIT_USER_ERROR = 2
EXIT_CHECK_FAILED = 1
EXIT_INTERRUPTED = 130          # 128 + SIGINT, as shells expect


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors printed as one line: every module's subclass of ``UserError``, and the deploy
    driver's own (it runs on boards without this package)."""
    from groupnet.errors import UserError
    from groupnet.hw.deploy.driver.groupnet_driver import DriverError
    return (UserError, DriverError)


def _parse_option(text: str) -> tuple[str, object]:
    """``k=2`` -> ("k", 2); values are read as JSON when possible, else kept as strings."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"option '{text}' is not NAME=VALUE")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _number(kind: type, low: float | None = None, high: float | None = None,
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


POSITIVE = _number(float, 0, low_open=True)
COUNT = _number(int, 1, meaning="a count of at least one")
PROBABILITY = _number(float, 0, 1, low_open=True, meaning="a probability per cycle; 0 would "
                      "never move a beat")
FRACTION = _number(float, 0, 1, low_open=True, meaning="a fraction of the board")


def _backpressure(text: str) -> str:
    """``sim --backpressure``: 'random' or a probability in (0, 1]."""
    if text == "random":
        return text
    try:
        PROBABILITY(text)
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{err}; or 'random'") from None
    return text


def _device(text: str) -> str:
    """``train --device``: auto, cpu, cuda[:N] (cuda only where CUDA is)."""
    if text not in ("auto", "cpu") and not text.startswith("cuda"):
        raise argparse.ArgumentTypeError(f"'{text}' is not auto, cpu or cuda[:N]")
    if text.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: no CUDA device on this machine; "
                                             "use --device cpu (or auto)")
    return text


# ------------------------------------------------------------------------------ verbs
def cmd_list(args: argparse.Namespace) -> int:
    from groupnet.models import list_models
    for name in list_models(args.pattern):
        print(name)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from groupnet.models import model_defaults
    from groupnet.models.train import TrainConfig, TrainError, train

    overrides = dict(args.option or [])
    unknown = set(overrides) - set(model_defaults(args.variant)) - {"dataset"}
    if unknown:
        raise TrainError(f"model '{args.variant}' has no option(s) {sorted(unknown)}; "
                         f"options: {sorted(model_defaults(args.variant))}")
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = args.dataset or _task_dataset(args.variant, overrides)
    cfg = TrainConfig(variant=args.variant, dataset=dataset, epochs=args.epochs,
                      relaxed_epochs=args.relaxed_epochs, batch_size=args.batch_size,
                      lr=args.lr, seed=args.seed, augment=not args.no_augment,
                      train_limit=args.train_limit, test_limit=args.test_limit,
                      val_limit=args.val_limit,
                      data_dir=args.data_dir, device=args.device, overrides=overrides,
                      eval_subset=args.eval_subset or None, fast=not args.brevitas_quant,
                      teacher=args.teacher, distill_alpha=args.distill_alpha,
                      distill_temperature=args.distill_temperature, init=args.init,
                      swa_epochs=args.swa_epochs, swa_lr=args.swa_lr,
                      validation=not args.no_validation)
    out = Path(args.out or f"runs/{args.variant}")
    metrics = _train_in(out, args, lambda: train(
        cfg, out, resume=args.resume, force=args.force, progress=not args.quiet,
        stop_after=args.stop_after, checkpoint_seconds=60 * args.checkpoint_minutes))
    if metrics.get("rank"):                 # torchrun: rank 0 reports
        return 0
    if metrics.get("interrupted"):
        again = [a for a in args.argv if a not in ("--force", "--resume")]
        print(f"groupnet train: interrupted; {out / 'last.pt'} holds the run mid-epoch: "
              f"continue with {shlex.join(['groupnet', *again, '--resume'])}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if metrics["stopped_early"]:
        print(f"{args.variant}: stopped after {metrics['steps_done']} steps "
              f"({len(metrics['history'])} of {args.epochs} epochs complete); continue "
              f"with --resume --out {out}")
        return 0
    if metrics.get("test_map50") is not None:
        score = f"test mAP@0.5 {metrics['test_map50']:.4f}"
    elif metrics.get("test_miou") is not None:
        score = f"test mIoU {metrics['test_miou']:.4f}"
    else:
        score = f"test accuracy {100 * metrics['test_accuracy']:.2f}%"
    print(f"{args.variant}: {score} on {metrics['test_images']} {dataset} test images; "
          f"checkpoint {out / (args.variant + '.pt')}")
    if "distributed" in metrics:
        d = metrics["distributed"]
        print(f"  {d['world_size']} processes ({d['backend']}), {d['batch_per_rank']} images per "
              f"rank and step; state dicts identical on every rank: {d['identical_state_dicts']}")
    return 0


TASK_DATASETS = {"classification": "fashion-mnist", "segmentation": "fashion-mnist-scenes",
                 "detection": "fashion-mnist-boxes"}


def _task_dataset(variant: str, overrides: dict) -> str:
    """The default dataset of a variant's task (a segmentation net: Fashion-MNIST scenes)."""
    from groupnet.models import create_model
    task = getattr(create_model(variant, **overrides), "task", "classification")
    return TASK_DATASETS[task]


def _train_in(out: Path, args: argparse.Namespace, run):
    """``run()`` with ``out`` checked (a train run or new folder, never an input), marked
    and locked (rank 0 of a torchrun: the other ranks write nothing)."""
    from groupnet.outdir import check_output, lock, read_marker, write_marker
    if int(os.environ.get("RANK", "0")) != 0:
        return run()
    check_output(out, "train", inputs=(args.teacher, args.init), foreign_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    held = lock(out)
    try:
        if read_marker(out) is None:
            write_marker(out, "train", variant=args.variant)
        return run()
    finally:
        held.release()


def cmd_eval(args: argparse.Namespace) -> int:
    path = Path(args.model)
    result = _eval_onnx(path, args) if path.suffix == ".onnx" else _eval_checkpoint(path, args)
    if args.json:
        print(json.dumps(result))
        return 0
    where = f"({result['n']} {result['dataset']} test images, {result['executor']})"
    if result["task"] == "detection":
        print(f"{result['variant']}: mAP@0.5 {result['map50']:.4f}, mAP@[.5:.95] "
              f"{result['map']:.4f} {where}")
    elif result["task"] == "segmentation":
        print(f"{result['variant']}: mIoU {result['miou']:.4f}, pixel accuracy "
              f"{100 * result['accuracy']:.2f}% {where}")
    else:
        print(f"{result['variant']}: {100 * result['accuracy']:.2f}% "
              f"({result['correct']}/{result['n']} {result['dataset']} test images, "
              f"{result['executor']})")
    return 0


def _eval_onnx(path: Path, args: argparse.Namespace) -> dict:
    """Accuracy (classification) or mIoU (segmentation) of an exported model (qonnx)."""
    from groupnet.models.data import dataset_info, load_dataset
    from groupnet.models.export import ExportError, execute_qonnx, read_metadata
    if not path.is_file():
        raise ExportError(f"{path}: ONNX file not found")
    try:
        meta = read_metadata(path)
    except Exception as err:  # noqa: BLE001 - protobuf raises many kinds
        raise ExportError(f"{path}: not a readable ONNX model ({type(err).__name__}); export "
                          "one with `groupnet export CHECKPOINT -o MODEL.onnx`") from None
    if "groupnet.variant" not in meta:
        raise ExportError(f"{path}: not a model exported by `groupnet export` (no "
                          "groupnet.variant metadata); eval takes its .onnx or a checkpoint")
    variant = meta["groupnet.variant"]
    dataset = args.dataset or meta.get("groupnet.dataset", "fashion-mnist")
    task = dataset_info(dataset).task
    if task == "detection":
        raise ExportError(f"{path}: eval of a detection .onnx is not supported (its boxes are "
                          "decoded on the host); eval the checkpoint for mAP, or `groupnet "
                          "deploy` a build of it (the driver reports mAP)")
    images, labels = load_dataset(dataset, "test", args.data_dir, args.limit)
    out = execute_qonnx(path, images)
    result = {"variant": variant, "model": str(path), "executor": "qonnx", "task": task,
              "dataset": dataset, "n": int(len(labels))}
    if task == "segmentation" and out.ndim == 4:       # score maps
        import torch

        from groupnet.models.train import dense_logits, segmentation_scores
        pred = dense_logits(torch.from_numpy(out), tuple(images.shape[-2:])).argmax(1)
        res = segmentation_scores(pred, torch.from_numpy(labels), out.shape[1])
        return result | {"accuracy": res["accuracy"], "miou": res["miou"]}
    if out.ndim != 2 or task != "classification":
        raise ExportError(f"{path}: outputs of shape {tuple(out.shape)} for the {dataset} "
                          f"{task} test set; pass the --dataset the model was trained on")
    correct = int((out.argmax(1) == labels).sum())
    return result | {"accuracy": correct / max(1, len(labels)), "correct": correct}


def _eval_checkpoint(path: Path, args: argparse.Namespace) -> dict:
    """The task's metrics of a checkpoint (PyTorch)."""
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.data import load_dataset
    from groupnet.models.train import evaluate, task_of
    model, payload = load_checkpoint(path)
    dataset = args.dataset or payload["config"].get("dataset", "fashion-mnist")
    images, labels = load_dataset(dataset, "test", args.data_dir, args.limit)
    res = evaluate(model, images, labels, progress=not args.json)
    result = {"variant": payload["variant"], "model": str(path), "executor": "pytorch",
              "task": task_of(model), "dataset": dataset, "n": res["n"]}
    keys = {"detection": ("map50", "map"), "segmentation": ("accuracy", "miou")}.get(
        result["task"], ("accuracy", "correct"))
    return result | {k: res[k] for k in keys}


def cmd_export(args: argparse.Namespace) -> int:
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.data import load_dataset
    from groupnet.models.export import export_qonnx, verify_export

    from groupnet.models.export import ExportError
    if Path(args.checkpoint).suffix == ".onnx":
        raise ExportError(f"{args.checkpoint} is an exported ONNX model already; export takes "
                          "a checkpoint (.pt from `groupnet train`)")
    out = Path(args.output or Path(args.checkpoint).with_suffix(".onnx"))
    _check_file_path(out, "-o", ExportError)
    model, payload = load_checkpoint(args.checkpoint)
    position = payload.get("epoch_position")
    if position:
        print(f"groupnet export: warning: {args.checkpoint} was written mid-epoch (epoch "
              f"{len(payload.get('history', [])) + 1}, step {position.get('step')}): an "
              "unfinished run's weights; finish it with `groupnet train ... --resume`",
              file=sys.stderr)
    path = export_qonnx(model, out, metrics=payload.get("metrics"), force=args.force)
    report = {"variant": payload["variant"], "onnx": str(path)}
    if args.verify > 0:
        dataset = payload["config"].get("dataset", "fashion-mnist")
        images, _ = load_dataset(dataset, "test", args.data_dir, args.verify)
        report["verify"] = verify_export(path, model, images)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"exported {payload['variant']} to {path}")
        if "verify" in report:
            v = report["verify"]
            state = "bit-exact" if v["bit_exact"] else "MISMATCH"
            if model.precision == "fp" and not v["bit_exact"]:
                state = ("float reference: same predictions" if v["predictions_equal"]
                         else "float reference: PREDICTIONS DIFFER")
            print(f"QONNX execution vs PyTorch on {v['n']} real test images: {state} "
                  f"(max |diff| {v['max_abs_diff']:g})")
    if "verify" in report and not report["verify"]["bit_exact"]:
        # float reference models cannot be bit-exact across libraries; binary ones must be
        if model.precision == "fp" and report["verify"]["predictions_equal"]:
            return 0
        return EXIT_CHECK_FAILED
    return 0


def cmd_boards(args: argparse.Namespace) -> int:
    from groupnet.hw.boards import BOARDS
    if args.json:
        print(json.dumps([b.as_dict() for b in BOARDS.values()]))
        return 0
    print(f"{'board':12s} {'FINN name':12s} {'part':22s} {'LUT':>7s} {'FF':>7s} "
          f"{'BRAM18':>6s} {'URAM':>4s} {'DSP':>5s} {'MHz':>5s}  PYNQ / shell")
    for b in BOARDS.values():
        print(f"{b.name:12s} {b.finn_name:12s} {b.part:22s} {b.lut:7d} {b.ff:7d} "
              f"{b.bram18:6d} {b.uram:4d} {b.dsp:5d} {b.clock_mhz:5g}  {b.pynq} / {b.shell}")
    print("ECP5 (ulx3s-*): LUT counts LUT4s, BRAM18 the 18 Kb EBRs, DSP the MULT18X18Ds; "
          "bitstreams with `groupnet bitstream` (open tools)")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from groupnet.flow import FlowCheckFailed, build_model
    from groupnet.hw.build import BuildConfig, BuildError, BuildPaths

    src = Path(args.model)
    overrides = dict(board=args.board, out=args.out, clock_mhz=args.clock_mhz,
                     target_fps=args.target_fps, budget=args.budget, folding=args.folding,
                     from_step=args.from_step, to_step=args.to_step,
                     rtl_layers=args.rtl_layers,
                     size_fifos=False if args.no_fifo_sizing else None)
    if args.config:                            # FINN's dataflow_build_config.json
        cfg = BuildConfig.from_finn_json(args.config, src, **overrides)
    elif src.is_dir():
        cfg = BuildConfig.from_yaml(src / "build.yaml", **overrides)
    elif not args.out:
        raise BuildError("--out DIR is needed when building a model file")
    else:
        cfg = BuildConfig(model=str(src), out=args.out,
                          **{k: v for k, v in overrides.items() if v is not None and k != "out"})
    cfg.force = args.force
    images = None
    if args.images or (args.verify and Path(cfg.model).suffix != ".pt"):
        # checked against the model's input before the build starts (a checkpoint's own
        # test images are loaded after its export)
        from groupnet.flow import images_for
        images, _ = images_for(cfg.model, args.verify or None, args.data_dir, args.dataset,
                               args.images)
    try:
        status = build_model(cfg, args.verify, args.data_dir,
                             progress=not (args.quiet or args.json), dataset=args.dataset,
                             images=images)
    except FlowCheckFailed as err:
        print(f"groupnet build: VERIFICATION FAILED: {err}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    except KeyboardInterrupt:
        print(f"groupnet build: interrupted; {_resume_hint(args, BuildPaths(Path(cfg.out)))}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    _print_build(BuildPaths(Path(cfg.out)), status, args)
    return 0 if status["state"] in ("complete", "stopped") else EXIT_CHECK_FAILED


def _resume_hint(args: argparse.Namespace, paths) -> str:
    """What to run after an interrupted build: the same command from the step that did not
    finish (or again, when --force put the earlier build back)."""
    status = json.loads(paths.status.read_text()) if paths.status.is_file() else {}
    argv, skip = [], False
    for a in args.argv:
        if skip:
            skip = False
        elif a in ("--from-step", "--force"):
            skip = a == "--from-step"
        elif not a.startswith("--from-step="):
            argv.append(a)
    step = status.get("failed_step")
    if status.get("state") != "failed" or not step:
        return (f"{paths.root} is as it was before; run the command again: "
                f"{shlex.join(['groupnet', *argv])}")
    return f"resume with: {shlex.join(['groupnet', *argv, '--from-step', step])}"


def _print_build(paths, status: dict, args: argparse.Namespace) -> None:
    est = json.loads(paths.estimates.read_text()) if paths.estimates.exists() else None
    ver = json.loads(paths.verification.read_text()) if paths.verification.exists() else {}
    if args.json:
        summary = {"status": status, "verification": {k: v["bit_exact"] for k, v in ver.items()}}
        if est:
            summary["estimates"] = {k: v for k, v in est.items() if k != "layers"}
        print(json.dumps(summary))
        return
    if est:
        print(f"estimates ({est['board']}, {est['clock_mhz']:g} MHz): {est['fps']:.0f} FPS, "
              f"latency {est['latency_us']:.1f} us, {est['lut']} LUT "
              f"({100 * est['utilization']['lut']:.1f}%), {est['bram18']} BRAM18, "
              f"{est['dsp']} DSP; bottleneck {est['bottleneck']}")
        if est.get("target_met") is False:
            print(f"target NOT MET: --target-fps {est['target_fps']:g}; the fastest folding "
                  f"FINN's SetFolding finds gives {est['fps']:.0f} FPS at "
                  f"{est['clock_mhz']:g} MHz (bottleneck {est['bottleneck']})")
    if ver:
        print("verification (Python execution vs the model, exact): " + ", ".join(
            f"{k} {'ok' if v['bit_exact'] else 'MISMATCH'} ({v['n']})" for k, v in ver.items()))
    if status["state"] == "stopped" and args.quiet:
        print(f"build stopped before '{status['stopped_before']}': {status['reason']}")
    print(f"outputs: {paths.root}")


def cmd_report(args: argparse.Namespace) -> int:
    from groupnet.hw.report import ReportError, draw, layer_table, load_estimates
    est = load_estimates(args.build_dir)
    print(layer_table(est))
    out = Path(args.output or Path(args.build_dir) / "report" / "dataflow.png")
    _check_file_path(out, "-o", ReportError)
    draw(est, out)
    print(f"picture: {out}")
    if args.synth is not None:
        from groupnet.hw.synth import synthesize
        synthesize(args.build_dir, families=tuple(args.synth) or None,
                   timeout_s=args.synth_timeout)
        print((Path(args.build_dir) / "report" / "synth.md").read_text())
    bit = Path(args.build_dir) / "report" / "bitstream.json"
    if bit.is_file():                      # `groupnet bitstream` ran on this build
        _print_bitstream(json.loads(bit.read_text()), Path(args.build_dir))
    return 0


def _check_file_path(path: Path, option: str, error: type[Exception]) -> None:
    """A file to write: not a folder, and no parent of it a file."""
    if path.is_dir():
        raise error(f"{option} {path} is a folder; name the file to write")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise error(f"{option} {path}: {parent} is a file, not a folder")


def cmd_deploy(args: argparse.Namespace) -> int:
    from groupnet.flow import dataset_of, images_for
    from groupnet.hw.deploy.package import NEEDS, DeployError, deploy
    from groupnet.hw.build import Build

    build = Build.open(args.build_dir, need=NEEDS, error=DeployError)
    out = Path(args.out) if args.out else build.root / "deploy"
    dataset = args.images or args.dataset or dataset_of(build.paths.input)
    images, labels = images_for(build.root, args.validation, args.data_dir, args.dataset,
                                args.images, args.labels)
    if labels is None:
        raise DeployError("--images needs --labels for deploy (the validation set's true "
                          "classes, so that the driver can report accuracy)")
    if not args.images and len(images) < args.validation and not args.quiet:
        print(f"--validation {args.validation}: {dataset} has {len(images)} test images; "
              f"shipping all {len(images)}", file=sys.stderr)
    result = deploy(build, out, images, labels, force=args.force,
                    progress=not (args.quiet or args.json))
    if args.json:
        print(json.dumps(result))
    else:
        if "validation_accuracy_expected" in result:
            quality = f"accuracy {result['validation_accuracy_expected']:.1%}"
        elif "validation_miou_expected" in result:
            quality = f"mIoU {result['validation_miou_expected']:.3f}"
        else:
            quality = f"mAP@0.5 {result['validation_map50_expected'] or 0:.3f}"
        print(f"deploy folder {out}: {result['variant']} for {result['board']}, "
              f"{result['validation_images']} {dataset} test images (expected {quality}), "
              + ("bitstream included" if result["bitfile"] else
                 "no bitstream (`groupnet bitstream` first): runs on the simulator backend"
                 if build.board.is_ecp5 else
                 "no bitfile (no Vivado build): runs on the simulator backend"))
        print(f"  try it: python {out / 'driver.py'} --exec_mode validate --backend sim")
    return 0


def _sim_jobs(text: str) -> int:
    """``--jobs``: a positive count, or 'auto' (the cores this process may run on)."""
    if text == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive number or 'auto'")
    return jobs


def cmd_sim(args: argparse.Namespace) -> int:
    from groupnet.flow import dataset_of, images_for
    from groupnet.hw.build import Build
    from groupnet.hw.report import draw_simulation
    from groupnet.hw.sim.run import NEEDS, simulate, size_fifos
    from groupnet.hw.sim.verilator import SimError

    build = Build.open(args.build_dir, need=NEEDS, error=SimError)
    dataset = args.images or args.dataset or dataset_of(build.paths.input)
    images, labels = images_for(build.root, args.frames, args.data_dir, args.dataset,
                                args.images)
    p_ready = 0.5 if args.backpressure == "random" else float(args.backpressure)
    sizing = None
    if args.size_fifos:
        sizing = size_fifos(build, images, shallow_fifos=args.shallow_fifos,
                            progress=not args.json)
    result = simulate(build, images, backpressure=p_ready, input_rate=args.input_rate,
                      seed=args.seed, shallow_fifos=args.shallow_fifos or None,
                      stats=not (args.no_stats or args.netlist), jobs=args.jobs,
                      netlist=args.netlist, progress=not args.json)
    if sizing:
        result["fifo_sizing"] = {k: v for k, v in sizing.items() if k != "sized_run"}
    if args.netlist:            # beside the RTL's report, never over it
        build.write_report("netlist_simulation.json", result)
    else:
        _write_sim_reports(build, result)
    if sizing:
        build.write_report("fifo_sizing.json", sizing["depths"])
    picture = (draw_simulation(result, build.paths.report / "simulation.png")
               if result["layers"] else None)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k not in ("layers", "fifos")}))
    else:
        _print_sim(result, args, dataset, p_ready, sizing, build, picture)
    return 0 if result["bit_exact"] else EXIT_CHECK_FAILED


def _write_sim_reports(build, result: dict) -> None:
    build.write_report("simulation.json", result)
    # FINN's report names and keys beside this project's
    build.write_report("rtlsim_performance.json", {
        "N": result["frames"], "cycles": result["cycles"], "fclk[mhz]": result["clock_mhz"],
        "runtime[ms]": result["cycles"] / (result["clock_mhz"] * 1e3),
        "throughput[images/s]": result["frames"] * result["clock_mhz"] * 1e6 / result["cycles"],
        "stable_throughput[images/s]": result["fps"], "latency_cycles": result["latency_cycles"],
        "batches": result["batches"], "kind": result["kind"]})


def _print_sim(result: dict, args, dataset: str, p_ready: float, sizing, build, picture) -> None:
    what = "ECP5 netlist simulation" if args.netlist else "RTL simulation"
    print(f"{what} ({result['frames']} {dataset} test images, "
          f"{'random back-pressure' if p_ready < 1 else 'no back-pressure'}): "
          f"{'BIT-EXACT' if result['bit_exact'] else 'MISMATCH'} with the HW graph")
    print(f"  {result['cycles_per_frame']:.0f} cycles/frame in steady state "
          f"(bound {result['bound_cycles_per_frame']}, FINN's slowest layer "
          f"{result['bottleneck']}) -> {result['fps']:.0f} FPS at "
          f"{result['clock_mhz']:g} MHz; latency {result['latency_cycles']} cycles "
          f"({result['latency_us']:.1f} us)")
    build_time = ("cached" if result["verilator_cached"]
                  else f"{result['verilator_build_s']:.0f} s")
    where = (f"simulated bottleneck: {result['simulated_bottleneck']}; "
             if result["layers"] else "")
    speed = f"{result['sim_cycles_per_s'] / 1e6:.2f} M simulated cycles/s"
    if result["batches"] > 1:
        speed = (f"{result['sim_cycles_per_wall_s'] / 1e6:.2f} M simulated cycles/s in "
                 f"{result['batches']} batches side by side ({speed} per core)")
    print(f"  {where}{speed}; Verilator build {build_time}")
    if sizing:
        built = sum(1 for d in sizing["depths"].values() if d > 2)
        shallow = ("depth-2 FIFOs simulated too" if args.shallow_fifos
                   else "depth-2 edges simulated as direct connections")
        print(f"  FIFO sizing: {sizing['total_fifo_entries']} entries on "
              f"{len(sizing['depths'])} edges, {built} FIFOs deeper than 2 ({shallow}); "
              f"{sizing['cycles_per_frame_sized']:.0f} "
              f"cycles/frame (with deep FIFOs {sizing['cycles_per_frame_deep']:.0f}); "
              f"written to {build.fifo_depths_path}")
    if picture:
        print(f"  per-layer picture: {picture}")


def cmd_bitstream(args: argparse.Namespace) -> int:
    from groupnet.flow import images_for
    from groupnet.hw.bitstream import NEEDS, BitstreamError, TimingFailed, bitstream
    from groupnet.hw.build import Build

    build = Build.open(args.build_dir, need=NEEDS, error=BitstreamError)
    images, _ = images_for(build.root, args.frames, args.data_dir, args.dataset, args.images)
    try:
        rep = bitstream(build, clock_mhz=args.clock_mhz, seed=args.seed,
                        keep_failing=args.keep_failing, images=images, baud=args.baud,
                        progress=not (args.quiet or args.json))
    except TimingFailed as err:
        print(f"groupnet bitstream: {err}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    if args.json:
        print(json.dumps(rep))
        return 0 if rep["timing_met"] else EXIT_CHECK_FAILED
    _print_bitstream(rep, build.root)
    return 0 if rep["timing_met"] else EXIT_CHECK_FAILED


def _print_bitstream(rep: dict, root: Path) -> None:
    """report/bitstream.json in a few lines (`groupnet bitstream`, `groupnet report`)."""
    clocks = ", ".join(f"{c['fmax_mhz']:.1f} MHz (wanted {c['constraint_mhz']:g})"
                       for c in rep["fmax_mhz"].values())
    print(f"{rep['board']} ({rep['part']}): post-route fmax {clocks}; timing "
          f"{'met' if rep['timing_met'] else 'NOT MET'}")
    print(f"  {rep['lut4']['used']:,} / {rep['lut4']['available']:,} LUT4, "
          f"{rep['ff']['used']:,} FF, {rep['ebr']['used']} / {rep['ebr']['available']} EBR, "
          f"{rep['dsp']['used']} MULT18")
    print(f"  {rep['fps']:,.0f} FPS at {rep['clock_mhz']:g} MHz (simulated "
          f"{rep['cycles_per_frame']:.0f} cycles/frame); over the UART at "
          f"{rep['uart']['baud']:,} baud: {rep['uart']['fps']:,.1f} FPS")
    print("  tools: " + ", ".join(f"{k} {v:.0f} s" for k, v in rep["seconds"].items()))
    print(f"bitstream: {root / rep['bitstream']}" if rep["bitstream"] else
          "no bitstream (timing not met; --keep-failing keeps one)")


def cmd_explore(args: argparse.Namespace) -> int:
    from groupnet.explore import load_spec, run_sweep
    spec = load_spec(args.spec)
    if args.park:
        from groupnet.explore.park import park_sweep
        out = Path(args.out or Path("runs") / "explore" / spec.name)
        counts = park_sweep(spec, out)
        if args.json:
            print(json.dumps(counts))
        else:
            print(f"{spec.park}: {counts['finished']} finished trainings and "
                  f"{counts['resume']} resume points parked ({counts['already']} parked "
                  "before); commit the folder to keep them")
        return 0
    if args.scheduler:
        executor = "scheduler"
    elif args.slurm:
        executor = "slurm"
    elif args.serial:
        executor = "serial"
    else:
        executor = "local"
    summary = run_sweep(spec, args.out, executor=executor, workers=args.workers,
                        scheduler=args.scheduler, slurm_jobs=args.slurm or 1,
                        cluster_options=dict(args.cluster_option or []),
                        progress=not (args.quiet or args.json),
                        retry_failed=args.retry_failed, threads=args.threads)
    out = Path(args.out or Path("runs") / "explore" / spec.name)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, default=str))
        return 0
    print((out / "front.md").read_text())
    failed = sum(1 for r in summary["rows"] if r["status"] == "failed")
    print(f"{len(summary['rows'])} results ({failed} failed) in {out / 'results.jsonl'}; "
          f"front: {out / 'front.md'}" + (f", {out / 'front.png'}"
                                          if (out / "front.png").exists() else ""))
    return 0


# ----------------------------------------------------------------------------- parser
def _image_args(p: argparse.ArgumentParser, labels: bool = False) -> None:
    """Test images from a file instead of the dataset (build, sim, deploy)."""
    p.add_argument("--images", metavar="FILE.npy",
                   help="test images (uint8 N x C x H x W) instead of the dataset")
    if labels:
        p.add_argument("--labels", metavar="FILE.npy", help="their classes (one per image)")


class _Parser(argparse.ArgumentParser):
    """Bad options are one line (what, which option, where the help is), exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="groupnet", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=_Parser)

    p = sub.add_parser("list", help="registered model variants, one per line")
    p.add_argument("pattern", nargs="?", help="shell-style filter, e.g. 'groupnet_*'")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("train", help="train a variant on real data")
    p.add_argument("variant")
    p.add_argument("--dataset", choices=DATASET_NAMES,
                   help="default: the variant's task's Fashion-MNIST set (fashion-mnist, "
                        "fashion-mnist-scenes, fashion-mnist-boxes)")
    p.add_argument("--data-dir", help="dataset folder (default: the dataset's standard place)")
    p.add_argument("--epochs", type=COUNT, default=10)
    p.add_argument("--relaxed-epochs", type=_number(int, 0), default=0,
                   help="two-stage schedule: first epochs with real-valued activations "
                        "(binary weights), the rest fully binary")
    p.add_argument("--batch-size", type=COUNT, default=128)
    p.add_argument("--lr", type=POSITIVE, default=3e-3, help="peak one-cycle learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--train-limit", type=COUNT, help="use only the first N training images")
    p.add_argument("--test-limit", type=COUNT, help="evaluate on the first N test images")
    p.add_argument("--val-limit", type=COUNT,
                   help="check on the first N validation images (quick runs; default all)")
    p.add_argument("--device", default="auto", type=_device,
                   help="auto (CUDA if present), cpu, cuda")
    p.add_argument("--threads", type=COUNT, help="torch CPU threads")
    p.add_argument("--option", "-O", action="append", type=_parse_option, metavar="NAME=VALUE",
                   help="model option, e.g. -O k=2 -O width=0.5 -O agg_bits=3 (repeatable)")
    p.add_argument("--teacher", metavar="CKPT",
                   help="distil from this trained checkpoint (same dataset and input size)")
    p.add_argument("--distill-alpha", type=float, default=0.7,
                   help="weight of the teacher term: (1-a) CE(labels) + a T^2 KL(teacher)")
    p.add_argument("--distill-temperature", type=float, default=4.0)
    p.add_argument("--init", metavar="CKPT",
                   help="fine-tune: start from this trained checkpoint of the same variant "
                        "and options (new optimizer and --epochs/--lr schedule)")
    p.add_argument("--swa-epochs", type=_number(int, 0), default=0, metavar="N",
                   help="stochastic weight averaging: the last N epochs at the constant "
                        "--swa-lr, the model the mean of their end weights with batch-norm "
                        "statistics recomputed on the training images")
    p.add_argument("--swa-lr", type=POSITIVE, default=1e-4,
                   help="constant Adam learning rate of the averaged epochs")
    p.add_argument("--eval-subset", type=_number(int, 0), default=2000, metavar="N",
                   help="per-epoch check on the first N validation images (0: all); the "
                        "final accuracies are on the whole val and test sets")
    p.add_argument("--no-validation", action="store_true",
                   help="the protocol before the validation split: train on all training "
                        "images, check on the first --eval-subset test images")
    p.add_argument("--brevitas-quant", action="store_true",
                   help="train through Brevitas' generic quantizers instead of the fast "
                        "paths (same values, slower)")
    p.add_argument("--checkpoint-minutes", type=POSITIVE, default=5.0,
                   help="also checkpoint this often within an epoch")
    p.add_argument("--out", help="output folder (default runs/VARIANT)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--stop-after", type=COUNT, metavar="E",
                   help="stop after epoch E (resume later with --resume)")
    p.add_argument("--force", action="store_true", help="start over, overwriting --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("eval", help="test accuracy of a checkpoint (PyTorch) or .onnx (qonnx)")
    p.add_argument("model", help="checkpoint .pt or exported .onnx")
    p.add_argument("--dataset", help="default: the dataset the model was trained on")
    p.add_argument("--data-dir")
    p.add_argument("--limit", type=COUNT, help="first N test images only")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(fn=cmd_eval)

    p = sub.add_parser("export", help="export a checkpoint to QONNX and check bit-exactness")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", help="output .onnx (default: beside the checkpoint)")
    p.add_argument("--verify", type=_number(int, 0), default=100, metavar="N",
                   help="check QONNX execution == PyTorch on N real test images (0: skip)")
    p.add_argument("--data-dir")
    p.add_argument("--force", action="store_true", help="overwrite an existing .onnx")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("boards", help="the board table")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_boards)

    p = sub.add_parser("build", help="FINN dataflow build of a model for a board")
    p.add_argument("model", help="QONNX .onnx, checkpoint .pt, or a builds/<board>/<variant> "
                                 "folder with build.yaml")
    p.add_argument("--board", help="board name (`groupnet boards`); default pynq-z2")
    p.add_argument("--out", help="output folder (default for a build folder: its out/)")
    fold = p.add_mutually_exclusive_group()
    fold.add_argument("--target-fps", type=POSITIVE,
                      help="fold for this throughput, least area")
    fold.add_argument("--budget", type=FRACTION,
                      help="fastest folding within this fraction of the board (default 0.7)")
    fold.add_argument("--folding", help="folding JSON (FINN format), checked per layer")
    p.add_argument("--clock-mhz", type=POSITIVE, help="default: the board's clock")
    p.add_argument("--config", metavar="JSON",
                   help="FINN's dataflow_build_config.json (output_dir, board, "
                        "synth_clk_period_ns, target_fps, folding_config_file, steps); "
                        "options given here override it")
    p.add_argument("--rtl-layers", choices=("finn", "groupnet"),
                   help="layer implementations in a Vivado build: FINN's (default) or this "
                        "project's RTL where it has the layer (the RTL `groupnet sim` runs)")
    p.add_argument("--no-fifo-sizing", action="store_true",
                   help="skip step size_fifos (FIFO depths by Verilator simulation, so the "
                        "accelerator never deadlocks; `groupnet sim --size-fifos` later)")
    p.add_argument("--verify", type=COUNT, nargs="?", const=20, default=0, metavar="N",
                   help="check the Python execution of the graph after each stage on N real "
                        "test images (default 20; with --images: all of them)")
    p.add_argument("--dataset", choices=DATASET_NAMES,
                   help="test images from this dataset (default: the model's, from its metadata)")
    p.add_argument("--data-dir", help="dataset folder for --verify")
    _image_args(p)
    p.add_argument("--from-step", help="resume an earlier build in --out from this step")
    p.add_argument("--to-step", help="stop after this step")
    p.add_argument("--force", action="store_true", help="replace an existing build in --out")
    p.add_argument("--json", action="store_true", help="print one JSON summary")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_build)

    p = sub.add_parser("report", help="layers and branches of a build, table + picture")
    p.add_argument("build_dir")
    p.add_argument("-o", "--output", help="picture path (default BUILD/report/dataflow.png)")
    p.add_argument("--synth", nargs="*", choices=["xc7", "xcup"], metavar="FAMILY",
                   help="also run Yosys synth_xilinx per layer and on the stitched design "
                        "(pre-place-and-route estimates; FAMILY xc7/xcup, default: the "
                        "board's); minutes per family")
    p.add_argument("--synth-timeout", type=POSITIVE, default=1800.0, metavar="S",
                   help="Yosys time limit per run in seconds (default 1800)")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("sim", help="cycle-accurate RTL simulation of a build (Verilator)")
    p.add_argument("build_dir")
    p.add_argument("--frames", type=COUNT, default=20, help="test images to stream through")
    p.add_argument("--backpressure", default="1.0", type=_backpressure,
                   help="'random' (output taken with probability 0.5 per cycle) or a "
                        "probability (default 1.0: always taken)")
    p.add_argument("--input-rate", type=PROBABILITY, default=1.0,
                   help="probability per cycle that an input beat is offered")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size-fifos", action="store_true",
                   help="size every FIFO by simulation first and write the depths back")
    p.add_argument("--shallow-fifos", action="store_true",
                   help="simulate the depth-2 FIFOs that finn-plus inserts even after "
                        "sizing (default: once sized, those edges are direct connections, "
                        "as FINN's InsertFIFO leaves them: the sizing checks the throughput; "
                        "a cycle less latency per edge, a quarter faster to simulate)")
    p.add_argument("--jobs", type=_sim_jobs, default="auto", metavar="N",
                   help="simulate the frames as N batches side by side, one process (core) "
                        "each, every batch from reset (at least 4 frames per batch): same "
                        "outputs, steady-state cycles/frame and latency as one run, faster on "
                        "free cores (default 'auto': one batch per core this process may "
                        "use; 1: one run; see docs/simulation.md)")
    p.add_argument("--no-stats", action="store_true",
                   help="leave out the per-layer counters and FIFO peaks (no simulated "
                        "bottleneck, no per-layer picture): 10-16%% fewer instructions per "
                        "simulated cycle")
    p.add_argument("--netlist", action="store_true",
                   help="simulate the netlist of Yosys' synth_ecp5 (Yosys' ECP5 cell models; "
                        "block RAMs and multipliers mapped to LUTs: Yosys has no simulation "
                        "model of them) instead of the RTL: minutes of synthesis first")
    p.add_argument("--dataset", choices=DATASET_NAMES,
                   help="test images from this dataset (default: the model's, from its metadata)")
    p.add_argument("--data-dir")
    _image_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(fn=cmd_sim)

    p = sub.add_parser("deploy", help="a self-contained folder for a PYNQ board (driver, IO "
                                      "spec, validation images, simulator model, bitfile)")
    p.add_argument("build_dir")
    p.add_argument("-o", "--out", help="deploy folder (default BUILD/deploy)")
    p.add_argument("--validation", type=COUNT, default=100, metavar="N",
                   help="test images shipped with their labels and expected outputs")
    p.add_argument("--dataset", choices=DATASET_NAMES,
                   help="test images from this dataset (default: the model's, from its metadata)")
    p.add_argument("--data-dir")
    _image_args(p, labels=True)
    p.add_argument("--force", action="store_true", help="replace an existing deploy folder")
    p.add_argument("--json", action="store_true", help="print one JSON summary")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(fn=cmd_deploy)

    p = sub.add_parser("bitstream", help="ECP5 bitstream of a build with the open tools "
                                         "(synth_ecp5, nextpnr-ecp5, ecppack; ULX3S)")
    p.add_argument("build_dir", help="a build for an ECP5 board (`groupnet build MODEL "
                                     "--board ulx3s-85f --out DIR`)")
    p.add_argument("--clock-mhz", type=POSITIVE, metavar="MHZ",
                   help="fabric clock (default: the build's); a PLL derives it from the "
                        "board's 25 MHz oscillator")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--keep-failing", action="store_true",
                   help="write the bitstream even when timing fails at the clock (exit 1)")
    p.add_argument("--baud", type=COUNT, default=3_000_000,
                   help="the UART's line rate (default 3,000,000: the ULX3S's FT231X)")
    p.add_argument("--frames", type=COUNT, default=20, metavar="N",
                   help="test images the design is simulated on (bit-exact, cycles per "
                        "frame) and its FIFOs sized on when the build has none (default 20)")
    p.add_argument("--dataset", choices=DATASET_NAMES,
                   help="test images from this dataset (default: the model's)")
    p.add_argument("--data-dir", help="where the dataset lies")
    _image_args(p)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(fn=cmd_bitstream)

    p = sub.add_parser("explore", help="design-space sweep (train, build, estimate, "
                                       "simulate) -> accuracy x LUT x FPS front per board")
    p.add_argument("spec", help="sweep spec (YAML; docs/explore.md)")
    p.add_argument("--out", help="sweep folder (default runs/explore/<spec name>); an "
                                 "interrupted sweep resumes there")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=COUNT,
                       help="local Dask workers (default: one per core)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    where.add_argument("--slurm", type=int, metavar="JOBS",
                       help="this many Slurm jobs of Dask workers (dask-jobqueue)")
    where.add_argument("--serial", action="store_true", help="no Dask: one point after another")
    p.add_argument("--cluster-option", "-C", action="append", type=_parse_option,
                   metavar="NAME=VALUE", help="SLURMCluster option, e.g. -C queue=gpu "
                                              "-C memory=32GB -C walltime=04:00:00")
    p.add_argument("--threads", type=COUNT, default=1,
                   help="torch threads per point (default 1: one point per core)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run points recorded as failed again")
    p.add_argument("--park", action="store_true",
                   help="copy the sweep's trainings (finished ones and the resume points of "
                        "unfinished ones) into the spec's park folder, then exit; safe while "
                        "the sweep runs")
    p.add_argument("--json", action="store_true", help="print one JSON summary")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(fn=cmd_explore)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    warnings.filterwarnings("ignore", category=UserWarning)
    try:
        return args.fn(args)
    except _user_errors() as err:
        print(f"groupnet {args.verb}: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"groupnet {args.verb}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
