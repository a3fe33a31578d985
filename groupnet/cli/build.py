"""Verbs on builds: ``boards``, ``build``, ``report``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from .options import (COUNT, EXIT_CHECK_FAILED, EXIT_INTERRUPTED, FRACTION, POSITIVE,
                      Deprecated, add_data, add_out, add_reporting, add_test_images,
                      check_file_path, progress_of)


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


# ------------------------------------------------------------------------------ build
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
        raise BuildError("-o/--out DIR is needed when building a model file")
    else:
        cfg = BuildConfig(model=str(src), out=args.out,
                          **{k: v for k, v in overrides.items() if v is not None and k != "out"})
    cfg.force = args.force
    # --verify: on -n images (default 20; with --images: all of them)
    verify = (args.test_images or (None if args.images else 20)) if args.verify else 0
    images = None
    if args.images or (verify and Path(cfg.model).suffix != ".pt"):
        # checked against the model's input before the build starts (a checkpoint's own
        # test images are loaded after its export)
        from groupnet.flow import images_for
        images, _ = images_for(cfg.model, verify or None, args.data_dir, args.dataset,
                               args.images)
        verify = len(images) if args.verify else 0
    try:
        status = build_model(cfg, verify, args.data_dir, progress=progress_of(args),
                             dataset=args.dataset, images=images)
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


# ----------------------------------------------------------------------------- report
def cmd_report(args: argparse.Namespace) -> int:
    from groupnet.hw.build import BuildPaths
    from groupnet.hw.report import ReportError, draw, layer_table, load_estimates
    est = load_estimates(args.build_dir)
    paths = BuildPaths(Path(args.build_dir))
    out = Path(args.out or paths.report / "dataflow.png")
    check_file_path(out, "-o", ReportError)
    draw(est, out)
    summary = {"estimates": est, "picture": str(out)}
    if not args.json:
        print(layer_table(est))
        print(f"picture: {out}")
    if args.synth is not None:
        from groupnet.hw.synth import synthesize
        summary["synth"] = synthesize(args.build_dir, families=tuple(args.synth) or None,
                                      timeout_s=args.synth_timeout,
                                      progress=progress_of(args))
        if not args.json:
            print((paths.report / "synth.md").read_text())
    if paths.bitstream_report.is_file():      # `groupnet bitstream` ran on this build
        summary["bitstream"] = json.loads(paths.bitstream_report.read_text())
        if not args.json:
            from .sim import print_bitstream
            print_bitstream(summary["bitstream"], paths.root)
    if args.json:
        print(json.dumps(summary, default=str))
    return 0


class _Verify(Deprecated):
    """``--verify`` is a switch; ``--verify N`` (the old spelling of ``--verify -n N``)
    still works for one release."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.verify = True
        if values is not None:
            super().__call__(parser, namespace, values, f"{option_string} N")
            namespace.test_images = values
            namespace.verify = True


# ----------------------------------------------------------------------------- parser
def register(sub) -> None:
    p = sub.add_parser("boards", help="the board table")
    add_reporting(p, quiet=False, json_help="print the boards as one JSON list")
    p.set_defaults(fn=cmd_boards)

    p = sub.add_parser("build", help="FINN dataflow build of a model for a board")
    p.add_argument("model", help="QONNX .onnx, checkpoint .pt, or a builds/<board>/<variant> "
                                 "folder with build.yaml")
    p.add_argument("--board", help="board name (`groupnet boards`); default pynq-z2")
    add_out(p, "output folder (default for a build folder: its out/)")
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
    p.add_argument("--verify", action=_Verify, nargs="?", type=COUNT, default=False,
                   new="--verify -n N", metavar="",
                   help="check the Python execution of the graph after each stage on -n "
                        "real test images")
    add_test_images(p, "test images of --verify (default 20; with --images: all of them)")
    add_data(p, images=True)
    p.add_argument("--from-step", help="resume an earlier build in --out from this step")
    p.add_argument("--to-step", help="stop after this step")
    p.add_argument("--force", action="store_true", help="replace an existing build in --out")
    add_reporting(p, json_help="print one JSON summary")
    p.set_defaults(fn=cmd_build)

    p = sub.add_parser("report", help="layers and branches of a build, table + picture")
    p.add_argument("build_dir", help="a build folder (`groupnet build ... -o DIR`)")
    add_out(p, "picture path (default BUILD/report/dataflow.png)", old=("--output",))
    p.add_argument("--synth", nargs="*", choices=["xc7", "xcup"], metavar="FAMILY",
                   help="also run Yosys synth_xilinx per layer and on the stitched design "
                        "(pre-place-and-route estimates; FAMILY xc7/xcup, default: the "
                        "board's); minutes per family")
    p.add_argument("--synth-timeout", type=POSITIVE, default=1800.0, metavar="S",
                   help="Yosys time limit per run in seconds (default 1800)")
    add_reporting(p, json_help="print the estimates (and Yosys' and the bitstream's "
                               "reports) as one JSON object")
    p.set_defaults(fn=cmd_report)
