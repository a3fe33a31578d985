"""Verbs that run a build: ``sim`` (Verilator), ``bitstream`` (the open ECP5 flow)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .options import (COUNT, EXIT_CHECK_FAILED, POSITIVE, PROBABILITY, add_data,
                      add_reporting, add_test_images, backpressure, jobs, progress_of)


def cmd_sim(args: argparse.Namespace) -> int:
    from groupnet.flow import dataset_of, images_for
    from groupnet.hw.build import Build
    from groupnet.hw.report import draw_simulation
    from groupnet.hw.sim.run import NEEDS, simulate, size_fifos
    from groupnet.hw.sim.verilator import SimError

    build = Build.open(args.build_dir, need=NEEDS, error=SimError)
    dataset = args.images or args.dataset or dataset_of(build.paths.input)
    images, labels = images_for(build.root, args.test_images, args.data_dir, args.dataset,
                                args.images)
    p_ready = 0.5 if args.backpressure == "random" else float(args.backpressure)
    sizing = None
    if args.size_fifos:
        sizing = size_fifos(build, images, shallow_fifos=args.shallow_fifos,
                            progress=progress_of(args))
    result = simulate(build, images, backpressure=p_ready, input_rate=args.input_rate,
                      seed=args.seed, shallow_fifos=args.shallow_fifos or None,
                      stats=not (args.no_stats or args.netlist), jobs=args.jobs,
                      netlist=args.netlist, progress=progress_of(args))
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
    images, _ = images_for(build.root, args.test_images, args.data_dir, args.dataset,
                           args.images)
    try:
        rep = bitstream(build, clock_mhz=args.clock_mhz, seed=args.seed,
                        keep_failing=args.keep_failing, images=images, baud=args.baud,
                        progress=progress_of(args))
    except TimingFailed as err:
        print(f"groupnet bitstream: {err}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    if args.json:
        print(json.dumps(rep))
        return 0 if rep["timing_met"] else EXIT_CHECK_FAILED
    print_bitstream(rep, build.root)
    return 0 if rep["timing_met"] else EXIT_CHECK_FAILED


def print_bitstream(rep: dict, root: Path) -> None:
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


# ----------------------------------------------------------------------------- parser
def register(sub) -> None:
    p = sub.add_parser("sim", help="cycle-accurate RTL simulation of a build (Verilator)")
    p.add_argument("build_dir", help="a build folder (`groupnet build ... -o DIR`)")
    add_test_images(p, "test images to stream through (default 20)", default=20,
                    old=("--frames",))
    p.add_argument("--backpressure", default="1.0", type=backpressure,
                   help="'random' (output taken with probability 0.5 per cycle) or a "
                        "probability (default 1.0: always taken)")
    p.add_argument("--input-rate", type=PROBABILITY, default=1.0,
                   help="probability per cycle that an input beat is offered")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random back-pressure and input rate (default 0)")
    p.add_argument("--size-fifos", action="store_true",
                   help="size every FIFO by simulation first and write the depths back")
    p.add_argument("--shallow-fifos", action="store_true",
                   help="simulate the depth-2 FIFOs that finn-plus inserts even after "
                        "sizing (default: once sized, those edges are direct connections, "
                        "as FINN's InsertFIFO leaves them: the sizing checks the throughput; "
                        "a cycle less latency per edge, a quarter faster to simulate)")
    p.add_argument("--jobs", type=jobs, default="auto", metavar="N",
                   help="simulate the images as N batches side by side, one process (core) "
                        "each, every batch from reset (at least 4 images per batch): same "
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
    add_data(p, images=True)
    add_reporting(p)
    p.set_defaults(fn=cmd_sim)

    p = sub.add_parser("bitstream", help="ECP5 bitstream of a build with the open tools "
                                         "(synth_ecp5, nextpnr-ecp5, ecppack; ULX3S)")
    p.add_argument("build_dir", help="a build for an ECP5 board (`groupnet build MODEL "
                                     "--board ulx3s-85f -o DIR`)")
    p.add_argument("--clock-mhz", type=POSITIVE, metavar="MHZ",
                   help="fabric clock (default: the build's); a PLL derives it from the "
                        "board's 25 MHz oscillator")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--keep-failing", action="store_true",
                   help="write the bitstream even when timing fails at the clock (exit 1)")
    p.add_argument("--baud", type=COUNT, default=3_000_000,
                   help="the UART's line rate (default 3,000,000: the ULX3S's FT231X)")
    add_test_images(p, "test images the design is simulated on (bit-exact, cycles per "
                       "frame) and its FIFOs sized on when the build has none (default 20)",
                    default=20, old=("--frames",))
    add_data(p, images=True)
    add_reporting(p, json_help="print the report as one JSON object")
    p.set_defaults(fn=cmd_bitstream)
