"""Simulation speed of the stitched accelerators, this tree against a baseline revision's
RTL, side by side in one run (docs/simulation.md, "Speed").

Each zoo model is built for the board through 'estimates', its FIFOs sized by simulation;
the same real test images are simulated sized (depth-2 edges direct) and unsized, in the
configurations of ``CONFIGS``: ``baseline`` (``hw/rtl/*.v`` as at ``--baseline``; its
windows FINN's when that revision has no ``sliding_window.v``), ``1 core`` (``groupnet sim
--jobs 1``), ``1 core, no counters`` (``--no-stats``), ``groupnet sim``'s default (one
batch per core) and a multi-threaded Verilator model. Every configuration must be
bit-exact, this tree's at one cycles-per-frame and latency, or the script stops. Speed:
cycles per second of wall-clock time and per CPU-second of the simulation loop, median of
``--repeats`` interleaved runs. Writes ``benchmarks/results/sim_speed.{json,md}``.

    python benchmarks/sim_speed.py --baseline d5963de   # the RTL before its pipelining
    python benchmarks/sim_speed.py --configs baseline "1 core"   # one core (beside other work)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CORES = len(os.sched_getaffinity(0))      # what `groupnet sim --jobs auto` uses
DEFAULT = f"default: {CORES} batches"
CONFIGS = {"baseline": {}, "1 core": {}, "1 core, no counters": {"stats": False},
           DEFAULT: {"jobs": CORES}, "Verilator --threads 2": {}}


def baseline_sources(rev: str, folder: Path) -> list[Path]:
    """This tree's own RTL file list, each file as it was at ``rev`` (absent files left out)."""
    from groupnet.hw.sim.stitch import OWN_SOURCES
    out = []
    for src in OWN_SOURCES:
        rel = src.resolve().relative_to(ROOT)
        got = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=ROOT, capture_output=True,
                             text=True)
        if got.returncode == 0:
            (folder / src.name).write_text(got.stdout)
            out.append(folder / src.name)
    return out


def measure(build, images, expected, config: str, fifo_depths, old: list[Path]) -> dict:
    """One simulation of ``config``: the baseline's RTL (``old``; its windows FINN's when
    it has no ``sliding_window.v``), Verilator's threads, or ``CONFIGS``' options."""
    from groupnet.hw.sim.run import simulate
    layers = {"rtl_sources": old, "finn_windows": not any(
        p.name == "sliding_window.v" for p in old)} if config == "baseline" else {}
    threads = tuple(config.split()[1:]) if config.startswith("Verilator --threads") else ()
    return simulate(build, images, fifo_depths=fifo_depths, expected=expected,
                    verilator_flags=threads, **layers, **CONFIGS[config])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="d5963de", help="git revision of the baseline RTL "
                    "(default: the RTL before its pipelining for the clock)")
    ap.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS),
                    help="configurations to run (default: all; 'baseline' always runs)")
    ap.add_argument("--variants", nargs="+", help="zoo models to simulate",
                    default=["groupnet_cnv_s_k2", "groupnet_cnv_s_k4", "bnn_cnv_kd"])
    ap.add_argument("--board", default="pynq-z2", help="the board to build for")
    ap.add_argument("--frames", type=int, default=80, help="test images a run")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each configuration")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"),
                    help="folder of sim_speed.{json,md}")
    ap.add_argument("--render", action="store_true",
                    help="simulate nothing: write the table again from sim_speed.json")
    args = ap.parse_args()
    if args.render:
        done = json.loads((Path(args.results) / "sim_speed.json").read_text())
        for key in ("frames", "repeats"):
            setattr(args, key, done[key])
        args.load = done.get("load", "")
        write(done["rows"], done["baseline"], args, Path(args.results))
        return 0

    load = os.getloadavg()[0]
    args.load = f" (load {load:.1f} at the start: other work beside it)" if load > 0.5 else ""
    # a fresh Verilator cache: every configuration is compiled here, none reused
    os.environ["GROUPNET_CACHE"] = tempfile.mkdtemp(prefix="groupnet-speed-cache-")
    from groupnet.flow import build_zoo_model
    from groupnet.hw.sim.run import median_speed, reference_outputs, size_fifos
    from groupnet.models.data import load_dataset

    images, _ = load_dataset("fashion-mnist", "test", limit=args.frames)
    rev = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        old = baseline_sources(rev, Path(tmp))
        for variant in args.variants:
            build, _ = build_zoo_model(variant, args.board, Path(tmp) / "builds")
            size_fifos(build, images)
            want = reference_outputs(build, images)
            for path, depths in (("sized", None), ("unsized", {})):
                runs = {c: [] for c in CONFIGS if c == "baseline" or c in args.configs}
                for _ in range(args.repeats):
                    for config in runs:                          # interleaved
                        runs[config].append(measure(build, images, want, config, depths, old))
                first = runs[next(c for c in runs if c != "baseline")][0]
                for config, done in runs.items():
                    for r in done:
                        same = (r["bit_exact"], r["cycles_per_frame"], r["latency_cycles"])
                        if not r["bit_exact"] or (config != "baseline" and same != (
                                True, first["cycles_per_frame"], first["latency_cycles"])):
                            raise SystemExit(f"{variant} {path} {config}: {same} differs "
                                             f"from this tree's first run")
                    row = {"variant": variant, "path": path, "config": config,
                           "frames": args.frames, **median_speed(done)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    write(rows, rev, args, Path(args.results))
    return 0


def write(rows: list[dict], rev: str, args, results: Path) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / "sim_speed.json").write_text(json.dumps(
        {"baseline": rev, "board": args.board, "frames": args.frames,
         "repeats": args.repeats, "cpus": os.cpu_count(), "load": args.load,
         "machine": f"{platform.machine()}, {platform.python_version()}",
         "kind": "Verilator simulation speed (simulated cycles per second)", "rows": rows},
        indent=2) + "\n")
    base = {(r["variant"], r["path"]): r for r in rows if r["config"] == "baseline"}
    lines = ["| model | FIFOs | cycles/frame | latency | configuration | M cycles/s (wall) | "
             "frames/s (wall) | vs baseline, same FIFOs | vs baseline, sized | "
             "M cycles/s per core (CPU) | vs baseline, same FIFOs (CPU) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    key = "wall_frames_per_s" if all("wall_frames_per_s" in r for r in rows) else \
        "wall_cycles_per_s"                   # files written before frames/s was recorded
    def cpu_fps(r: dict) -> float:      # frames per CPU-second: steadier on a shared machine
        return r["cpu_cycles_per_s"] / r["cycles_per_frame"]
    for r in rows:
        bb = base[(r["variant"], r["path"])]
        b = bb[key]
        bs = base[(r["variant"], "sized")][key]
        fps = f"{r['wall_frames_per_s']:.0f}" if "wall_frames_per_s" in r else "-"
        lines.append(f"| `{r['variant']}` | {r['path']} | {r['cycles_per_frame']:.0f} | "
                     f"{r.get('latency_cycles', '-')} | {r['config']} | "
                     f"{r['wall_cycles_per_s'] / 1e6:.2f} | {fps} | "
                     f"{r[key] / b:.2f}x | {r[key] / bs:.2f}x | "
                     f"{r['cpu_cycles_per_s'] / 1e6:.2f} | {cpu_fps(r) / cpu_fps(bb):.2f}x |")
    lines += ["", f"Baseline: the RTL at `{rev}`. {args.frames} Fashion-MNIST test images per "
              f"run, median of {args.repeats} runs, configurations interleaved; "
              f"{CORES} cores{args.load}. Wall: the harness processes' wall-clock time "
              "(batches: all processes, side by side). Ratios: of "
              f"{'frames' if key == 'wall_frames_per_s' else 'cycles'} per second of wall "
              "time; (CPU): of frames per CPU-second of the simulation loop, steadier when "
              "other work shares the machine. Every configuration gave the same outputs, and "
              "this tree's the same "
              "cycles per frame and latency (checked by the script)."]
    for path in ("sized", "unsized"):
        gains = [r[key] / base[(r["variant"], "sized")][key]
                 for r in rows if r["path"] == path and r["config"] == DEFAULT]
        if gains:
            lines += ["", f"`groupnet sim`'s default (`--jobs auto`), {path} FIFOs: "
                      f"{min(gains):.2f}-{max(gains):.2f}x the baseline's sized path."]
    (results / "sim_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
