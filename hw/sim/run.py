"""Cycle-accurate simulation of a build's accelerator (``groupnet sim``).

Stitches ``DIR/dataflow.onnx`` (``stitch.py``), builds it with Verilator (cached), streams
real images through it, and checks every output bit-exactly against the Python execution
of the HW-layer graph (``intermediate_models/*_convert_to_hw.onnx``). Reports
steady-state cycles per frame, latency, FPS at the build's clock and simulation speed.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from .stitch import stitch
from ..context import ESTIMATED, Build, as_build
from ..driver.groupnet_driver.simulator import StreamRun, idle_limit
from .verilator import SimError, pack, run_stream, unpack
from .verilator import build as verilator_build

NEEDS = ESTIMATED


def _hw_graph(build_dir: Path) -> Path:
    found = sorted((build_dir / "intermediate_models").glob("*_convert_to_hw.onnx"))
    if not found:
        raise SimError(f"{build_dir}: no convert_to_hw model; run `groupnet build` first")
    return found[-1]


def reference_outputs(build: "Build | str | Path", images: np.ndarray,
                      progress: str | None = None) -> np.ndarray:
    """Raw accelerator outputs per image from the Python execution of the HW graph, in the
    accelerator's order (a score map's NHWC, before the host's transpose); ``progress``:
    a progress bar with this description."""
    from ..verify import execute, without_output_transpose
    build = as_build(build, error=SimError)
    with build.finn():
        graph = without_output_transpose(ModelWrapper(str(_hw_graph(build.root))))
        return execute(graph, images, progress).astype(np.int64)


def input_beats(images: np.ndarray, simd: int, bits: int,
                perm: tuple[int, ...] | None = (0, 2, 3, 1)) -> list[list[int]]:
    """The accelerator's input beats: the images in the order the host sends them (``perm``:
    the host's input transpose, NCHW -> NHWC; None: as they are, e.g. an MLP's flatten)."""
    x = images.transpose(perm) if perm else images
    flat = np.ascontiguousarray(x).reshape(len(images), -1)
    return [pack(row[i:i + simd], bits) for row in flat for i in range(0, len(row), simd)]


def host_input_perm(build: "Build") -> tuple[int, ...] | None:
    """The input transpose the host runs in front of the accelerator (parent.onnx), if any."""
    parent = build.parent()
    node = parent.find_consumer(parent.graph.input[0].name)
    if node is not None and node.op_type == "Transpose":
        return tuple(int(v) for a in node.attribute if a.name == "perm" for v in a.ints)
    return None


def simulate(build: "Build | str | Path", images: np.ndarray, backpressure: float = 1.0,
             input_rate: float = 1.0, seed: int = 0, fifo_depths: dict | None = None,
             default_depth: int = 2, shallow_fifos: bool | None = None,
             stats: bool = True, jobs: int = 1, expected: np.ndarray | None = None,
             netlist: bool = False, progress: bool = False,
             rtl_sources: list[Path] | None = None, finn_windows: bool = False,
             verilator_flags: tuple[str, ...] = ()) -> dict:
    """Simulate ``len(images)`` frames. ``backpressure``/``input_rate``: probability per
    cycle that the output is taken / an input beat is offered. ``fifo_depths``: per edge
    (default: ``DIR/fifo_depths.json`` if the build has one, else ``default_depth``).
    ``shallow_fifos``: build the depth-2 FIFOs too, as finn-plus inserts them. Default:
    yes for unsized FIFOs; once sized (``size_fifos`` checked the throughput that way),
    depth-2 edges are direct connections (see ``stitch``: a quarter faster to simulate,
    a cycle less latency per edge). ``stats``: per-layer counters and FIFO peaks (the
    ``layers`` and ``fifos`` of the result); without, 10-16% fewer instructions per cycle.
    ``jobs``: split the frames into that many batches (at least ``MIN_BATCH`` frames each)
    and simulate them side by side, one process each, every batch from reset: the
    steady-state cycles per frame are the median over the batches' steady halves, the
    latency is the first batch's (the same as one run: it starts the same way), the
    outputs are compared frame by frame; ``cycles`` is then the sum of the batches' cycles
    (each fills the pipeline once), and counters are summed (FIFO peaks: the maximum).
    ``expected``: ``reference_outputs(build, images)`` when the caller has it already.
    ``netlist``: simulate the netlist Yosys' ``synth_ecp5`` makes of the stitched RTL
    (``hw.ecp5.netlist``, Yosys' ECP5 cell models) instead of the RTL (no counters).
    ``progress``: say on stderr when the long parts start (synthesis, a compile).
    ``rtl_sources`` / ``finn_windows``: what ``stitch`` builds the layers from (other files
    of this project's modules, e.g. an earlier revision's; FINN's sliding windows).
    ``verilator_flags``: added to Verilator's (e.g. ``("--threads", "2")``)."""
    build = as_build(build, need=NEEDS, error=SimError)
    if fifo_depths is None:
        fifo_depths = build.fifo_depths()
    if shallow_fifos is None:
        shallow_fifos = not fifo_depths
    est = build.estimates()
    stats = stats and not netlist
    design, exe, synth = _compiled(build, fifo_depths, default_depth, shallow_fifos, stats,
                                   netlist, progress, dict(rtl_sources=rtl_sources,
                                                           finn_windows=finn_windows),
                                   verilator_flags)
    bounds = _batches(len(images), jobs)
    t0 = time.perf_counter()
    runs = _run_batches(build, design, exe, images, bounds, est, input_rate, backpressure,
                        seed)
    wall = time.perf_counter() - t0
    got, steady, first_done = _frames(design, runs)
    want = reference_outputs(build, images) if expected is None else expected
    bad = np.nonzero((got != want).any(axis=1))[0]
    cycles_per_frame = float(np.median(steady)) if len(steady) else float(first_done)
    run = _combined(design, runs)
    layers, fifos = _stats(design, run, est)
    slowest = max(layers, key=lambda r: r["active_cycles"]) if layers else None
    clock_mhz = build.clock_mhz
    return {
        "bit_exact": bool(len(bad) == 0), "mismatched_frames": bad.tolist()[:20],
        "frames": len(images), "cycles": run.cycles,
        "cycles_per_frame": cycles_per_frame,
        "bound_cycles_per_frame": est["max_cycles"], "bottleneck": est["bottleneck"],
        "fps": clock_mhz * 1e6 / cycles_per_frame, "clock_mhz": clock_mhz,
        "latency_cycles": int(first_done), "latency_us": float(first_done) / clock_mhz,
        # the simulation loop alone (the harness times it, on one core per batch); wall
        # (all batches) includes start-up and I/O
        "sim_cycles_per_s": run.cycles / run.seconds if run.seconds > 0 else 0.0,
        "sim_cycles_per_wall_s": run.cycles / wall if wall > 0 else 0.0, "batches": len(runs),
        "sim_seconds": run.seconds, "wall_seconds": wall, "verilator_build_s": exe.build_seconds,
        "verilator_cached": exe.cached, "backpressure": backpressure,
        "simulated_bottleneck": slowest["name"] if slowest else None,
        "layers": layers, "fifos": fifos, "shallow_fifos": shallow_fifos, "stats": stats,
        "direct_edges": sum(1 for e in design.edges if not e["fifo"]),
        "kind": _kind(netlist, design.finn_layers), "netlist": netlist,
        "netlist_cells": synth["cells"] if synth else None,
    }


def netlist_check(build: "Build | str | Path", images: np.ndarray) -> dict:
    """The ECP5 netlist of the stitched RTL (``simulate(netlist=True)``) simulated beside
    the RTL on the same images: bit-exactness, both cycles per frame, the seconds."""
    net = simulate(build, images, netlist=True)
    rtl = simulate(build, images, stats=False)
    return {"frames": len(images), "bit_exact": net["bit_exact"],
            "cycles_per_frame": net["cycles_per_frame"],
            "rtl_cycles_per_frame": rtl["cycles_per_frame"],
            "verilator_build_s": round(net["verilator_build_s"]),
            "sim_seconds": round(net["sim_seconds"], 1)}


def median_speed(runs: list[dict]) -> dict:
    """Repeated :func:`simulate` results of one design: the first run's batches, cycles,
    cycles per frame and latency, and the medians of the speeds: frames and simulated
    cycles per second of wall time, simulated cycles per CPU-second of the loop."""
    first = runs[0]
    return {**{k: first[k] for k in ("batches", "cycles", "cycles_per_frame",
                                     "latency_cycles")},
            "wall_frames_per_s": statistics.median(r["frames"] / r["wall_seconds"]
                                                   for r in runs),
            "wall_cycles_per_s": statistics.median(r["sim_cycles_per_wall_s"] for r in runs),
            "cpu_cycles_per_s": statistics.median(r["sim_cycles_per_s"] for r in runs)}


def _kind(netlist: bool, finn_layers: list[str]) -> str:
    if netlist:
        from .. import ecp5
        return ("cycle-accurate simulation (Verilator) of the ECP5 netlist of Yosys' "
                f"synth_ecp5 {ecp5.NETLIST_SIM_OPTIONS} (Yosys' cell models)")
    finn = (f" + FINN's generated RTL for {', '.join(finn_layers)}" if finn_layers else "")
    return f"cycle-accurate RTL simulation (Verilator) of this project's RTL{finn}"


def _compiled(build: "Build", fifo_depths, default_depth: int, shallow_fifos: bool,
              stats: bool, netlist: bool, progress: bool, layers: dict | None = None,
              verilator_flags: tuple[str, ...] = ()):
    """The stitched design (``DIR/sim``; ``layers``: ``stitch``'s ``rtl_sources`` and
    ``finn_windows``), its ECP5 netlist when ``netlist``, compiled by Verilator (cached):
    (design, executable, synthesis report or None)."""
    folder = build.root / "sim"
    with build.finn():
        design = stitch(build.dataflow(), folder, build.part, build.clock_period_ns,
                        fifo_depths, default_depth, shallow_fifos=shallow_fifos,
                        stats=stats, **(layers or {}))
    sources, synth = design.sources, None
    if netlist:
        from .. import ecp5
        if progress:
            print(f"synthesizing the netlist of {design.top} (Yosys synth_ecp5, minutes)...",
                  file=sys.stderr, flush=True)
        sources, synth = ecp5.netlist(design.sources, design.top, folder)
    exe = verilator_build(sources, design.top, {},
                          defines={"STATS_WORDS": len(design.stats)} if stats else None,
                          opt_fast="-O1" if netlist else "-O2", verbose=progress,
                          extra_flags=verilator_flags)
    return design, exe, synth


def _run_batches(build: "Build", design, exe, images: np.ndarray, bounds: list[int],
                 est: dict, input_rate: float, backpressure: float, seed: int
                 ) -> list[StreamRun]:
    """Each batch of frames streamed through its own process, side by side; a stuck
    stream is one SimError naming where it stopped."""
    per_frame = design.beats_out_per_frame
    perm = host_input_perm(build)
    batch_beats = [input_beats(images[lo:hi], design.in_simd, design.in_elem_bits, perm)
                   for lo, hi in zip(bounds, bounds[1:])]

    def one(i: int) -> StreamRun:
        frames_i = bounds[i + 1] - bounds[i]
        return run_stream(exe, batch_beats[i], frames_i * per_frame, input_rate, backpressure,
                          seed + i, cwd=build.root / "sim",
                          max_cycles=200 * est["max_cycles"] * (frames_i + 2) + 100_000,
                          idle_cycles=idle_limit(est["max_cycles"], est.get("latency_cycles")))

    if len(batch_beats) == 1:
        runs = [one(0)]
    else:
        with ThreadPoolExecutor(len(batch_beats)) as pool:   # each thread waits on a process
            runs = list(pool.map(one, range(len(batch_beats))))
    for i, run in enumerate(runs):
        if run.stalled:
            raise SimError(_stuck_message(design, run, (bounds[i + 1] - bounds[i]) * per_frame,
                                          len(batch_beats[i])))
    return runs


def _frames(design, runs: list[StreamRun]) -> tuple[np.ndarray, np.ndarray, int]:
    """The outputs frame by frame (all batches), the steady-state cycles between frames
    (each batch's second half), the first frame's latency."""
    per_frame = design.beats_out_per_frame
    got, steady = [], []
    for run in runs:
        n = len(run.outputs) // per_frame
        got += [np.concatenate([unpack(run.outputs[f * per_frame + b], design.out_pe,
                                       design.out_elem_bits, design.out_signed)
                                for b in range(per_frame)]) for f in range(n)]
        done = np.asarray([run.out_cycles[(f + 1) * per_frame - 1] for f in range(n)])
        steady.append(np.diff(done)[len(done) // 2:] if n > 2 else np.diff(done))
    return np.stack(got), np.concatenate(steady), runs[0].out_cycles[per_frame - 1]


MIN_BATCH = 4     # frames per batch of a split simulation: enough for a steady state


def _batches(frames: int, jobs: int) -> list[int]:
    """Batch boundaries: ``jobs`` (at most) contiguous batches of at least MIN_BATCH frames."""
    n = max(1, min(int(jobs), frames // MIN_BATCH))
    return [frames * i // n for i in range(n + 1)]


def _combined(design, runs: list[StreamRun]) -> StreamRun:
    """One StreamRun for the batches: cycles and CPU time summed, counters summed, FIFO
    peaks the maximum (outputs are not carried: the caller has them per batch)."""
    stats = None
    if runs[0].stats:
        stats = [max(vals) if kind == "peak" else sum(vals)
                 for (kind, _), vals in zip(design.stats, zip(*(r.stats for r in runs)))]
    return StreamRun([], [], sum(r.cycles for r in runs), sum(r.in_beats for r in runs),
                     False, stats, sum(r.seconds for r in runs),
                     max(r.wall_seconds for r in runs))


def _stats(design, run, est: dict) -> tuple[list[dict], list[dict]]:
    """Per-layer busy/stall cycles and per-FIFO peaks from the design's counters."""
    if not run.stats:
        return [], []
    values: dict[tuple[str, str], int] = {}
    for (kind, name), value in zip(design.stats, run.stats):
        values[(kind, name)] = value
    expected = {r["name"]: r["cycles"] for r in est["layers"]}
    layers = []
    for name in design.layers:
        starved, blocked = values[("starved", name)], values[("blocked", name)]
        layers.append({"name": name, "starved_cycles": starved, "blocked_cycles": blocked,
                       "active_cycles": run.cycles - starved - blocked,
                       "expected_cycles_per_frame": expected.get(name)})
    fifos = [{"edge": e["name"], "depth": e["depth"], "peak": values[("peak", e["name"])]}
             for e in design.edges if e["fifo"]]
    return layers, fifos


def _stuck_message(design, run, n_out: int, n_in: int) -> str:
    """Name where the dataflow stopped: the first layer (in dataflow order) that holds an
    output nobody takes, and the full FIFOs in front of it."""
    where = ""
    if run.stats:
        layers, fifos = _stats(design, run, {"layers": []})
        full = [f["edge"] for f in fifos if f["peak"] >= f["depth"]]
        blocked = [l["name"] for l in layers if l["blocked_cycles"] > run.cycles // 2]
        if blocked:
            where = (f"; layer {blocked[-1]} is blocked (its output is not taken) and the "
                     f"FIFO(s) {', '.join(full[-3:]) or 'none'} are full")
    else:
        where = " (simulate with the per-layer counters, without --no-stats, to see where)"
    return (f"simulation stopped making progress after {len(run.outputs)} of {n_out} output "
            f"beats ({run.in_beats} of {n_in} input beats taken) within {run.cycles} cycles: "
            f"a stuck stream or deadlock{where}; size the FIFOs with `groupnet sim "
            "--size-fifos`")


def size_fifos(build: "Build | str | Path", images: np.ndarray, deep: int = 1024,
               shallow_fifos: bool = False, progress: bool = False) -> dict:
    """FIFO depths by simulation (the step FINN can only do with Vivado).

    1. every FIFO ``deep`` entries, input at full rate: the throughput the layers allow;
    2. again, input offered at exactly that rate (a faster source would fill every FIFO in
       front of the bottleneck and say nothing about what the graph needs); each FIFO's
       peak occupancy + 1 becomes its depth;
    3. again with those depths, checking that the throughput holds, with the depth-2
       edges as direct connections (unless ``shallow_fifos``), as ``simulate`` then runs
       a sized build.
    Writes ``DIR/fifo_depths.json`` and FINN's ``inFIFODepths`` into ``DIR/dataflow.onnx``.
    """
    build = as_build(build, need=NEEDS, error=SimError)
    want = reference_outputs(build, images)           # once for the three runs
    free = simulate(build, images, fifo_depths={}, default_depth=deep, expected=want,
                    progress=progress)
    model = build.dataflow()
    from qonnx.custom_op.registry import getCustomOp
    first = getCustomOp(model.find_consumer(model.graph.input[0].name))
    beats_in = int(np.prod(first.get_folded_input_shape()[:-1]))
    rate = min(1.0, beats_in / free["cycles_per_frame"])
    paced = simulate(build, images, fifo_depths={}, default_depth=deep, input_rate=rate,
                     seed=1, expected=want)
    depths = {f["edge"]: max(2, f["peak"] + 1) for f in paced["fifos"]}
    sized = simulate(build, images, fifo_depths=depths, shallow_fifos=shallow_fifos,
                     expected=want, progress=progress)
    ok = sized["cycles_per_frame"] <= free["cycles_per_frame"] * 1.01
    build.fifo_depths_path.write_text(json.dumps(depths, indent=2) + "\n")
    _write_finn_fifo_attrs(build.paths.dataflow, depths)
    from ..fifo_handoff import write_finn_fifo_config
    write_finn_fifo_config(build.root, build.part)   # FINN's Vivado flow: fifo_config_file
    return {"depths": depths, "cycles_per_frame_deep": free["cycles_per_frame"],
            "verilator_build_s": free["verilator_build_s"],
            "cycles_per_frame_sized": sized["cycles_per_frame"], "throughput_kept": ok,
            "input_rate_for_sizing": rate,
            "total_fifo_entries": int(sum(depths.values())), "sized_run": sized}


def _write_finn_fifo_attrs(path: Path, depths: dict) -> None:
    set_fifo_attrs(ModelWrapper(str(path)), depths).save(str(path))


def set_fifo_attrs(model: ModelWrapper, depths: dict) -> ModelWrapper:
    """Edge ``<producer stream>__<consumer>`` -> consumer's ``inFIFODepths`` (FINN reads
    these when FIFO depths are not sized automatically)."""
    from qonnx.custom_op.registry import getCustomOp
    per_node: dict[str, list[int]] = {}
    for edge, depth in depths.items():
        consumer = edge.split("__", 1)[1]
        per_node.setdefault(consumer, []).append(int(depth))
    for node in model.graph.node:
        if node.name in per_node:
            try:
                getCustomOp(node).set_nodeattr("inFIFODepths", per_node[node.name])
            except AttributeError:
                pass
    return model
