"""The simulator protocol, defined once: how a Verilator model of an accelerator is
compiled (cached by content) and how the stream harness (``stream_harness.cpp``) is run
and its output read.

Standard library only: the deploy driver's ``sim`` backend runs it on board images and
laptops without this package's other dependencies, and ``groupnet.hw.sim`` imports it
from here. Harness command line: ``IN OUT N_OUT P_VALID P_READY SEED MAX_CYCLES
IDLE_CYCLES``; ``IN`` holds one input beat per line (32-bit hex words, word 0 first);
``OUT`` gets one line per output beat (``cycle word0 word1 ...``), optionally a
``stats ...`` line, and a last ``cycles C in_beats B out_beats O stalled S seconds T wall
W`` line.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Verilator's makefile puts its OPT_FAST (default -Os) after, so over, any -O in CXX_FLAGS:
# the per-cycle code gets -O2 through OPT_FAST (as fast as -O3 here, quicker to build);
# the code run once (initialization: OPT_SLOW) and Verilator's runtime library
# (OPT_GLOBAL) are built for compile speed.
# (--unroll-*: Verilator's defaults leave a loop over an MVAU's PEs with a loop inside as a
# run-time loop over bounds-checked indices; unrolled, the demo accelerator simulates about
# 6% more cycles a second)
VERILATOR_FLAGS = ["--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast",
                   "--unroll-count", "1024", "--unroll-stmts", "100000",
                   "--noassert", "-Wno-fatal", "-Wno-WIDTH",
                   "-MAKEFLAGS", "OPT_FAST=-O2 OPT_SLOW=-O0 OPT_GLOBAL=-Os"]
INSTALL_HINT = "install it with `apt-get install verilator` (or `make system`)"


def cache_root(kind: str) -> Path:
    """``~/.cache/groupnet/<kind>`` (``GROUPNET_CACHE`` moves the root)."""
    root = os.environ.get("GROUPNET_CACHE") or Path.home() / ".cache" / "groupnet"
    return Path(root) / kind


def idle_limit(cycles_per_frame: int, latency_cycles: int | None) -> int:
    """Cycles without a beat in or out after which a run counts as stuck: well above what
    a working accelerator can take between two beats (from the last input to the first
    output of a frame: its latency; a heavily folded full-width network takes millions)."""
    return int(max(100_000, 4 * cycles_per_frame, 2 * (latency_cycles or 0)))


def find_verilator(error: type[Exception] = RuntimeError) -> str:
    """The one lookup of the Verilator executable, with the install hint."""
    path = shutil.which("verilator")
    if path is None:
        raise error(f"the simulator needs verilator, which is not on PATH: {INSTALL_HINT}")
    return path


@dataclass
class Compiled:
    executable: Path
    build_seconds: float
    cached: bool


def _objcache() -> list[str]:
    """ccache for the C++ compiles when it is installed (`make system` installs it): the
    runtime library and the harness are the same for every model, a third of a small
    model's compile; not part of the cache key (the executable is the same)."""
    found = shutil.which("ccache")
    return ["-MAKEFLAGS", f"OBJCACHE={found}"] if found else []


def compile_model(sources: list[Path], harness: Path, top: str, cache: Path,
                  cflags: str = "", gparams: tuple[str, ...] = (),
                  defines: dict[str, int] | None = None, jobs: int = 2,
                  extra_inputs: tuple[Path, ...] = (),
                  error: type[Exception] = RuntimeError, verbose: bool = False,
                  opt_fast: str = "-O2", extra_flags: tuple[str, ...] = ()) -> Compiled:
    """Verilate ``top`` with the stream harness into ``cache/<top>-<hash>/``; the hash
    covers every source, the harness, ``extra_inputs`` (e.g. force-included headers), the
    parameters, defines and flags (``extra_flags``: added to ``VERILATOR_FLAGS``, e.g.
    ``--threads 2``), so the same design is compiled once."""
    h = hashlib.sha256()
    for path in [*sources, harness, *extra_inputs]:
        h.update(Path(path).read_bytes())
    flags = [f.replace("OPT_FAST=-O2", f"OPT_FAST={opt_fast}") for f in VERILATOR_FLAGS]
    flags += list(extra_flags)
    h.update(repr((top, sorted(gparams), sorted((defines or {}).items()), flags,
                   cflags)).encode())
    out = cache / f"{top}-{h.hexdigest()[:16]}"
    exe = out / f"V{top}"
    if exe.is_file():
        return Compiled(exe, 0.0, True)
    tool = find_verilator(error)
    if verbose:
        print(f"compiling the Verilator model of {top} (once per design; seconds to "
              "minutes)...", file=sys.stderr, flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=f"{top}-tmp-"))
    cmd = [tool, *flags, *_objcache(), "-j", str(jobs), "--top-module", top, "-Mdir",
           str(tmp), *gparams,
           "-CFLAGS", f"{cflags} -DTOP_HEADER='\"V{top}.h\"' -DTOP_CLASS=V{top}"
                      + "".join(f" -D{k}={int(v)}" for k, v in (defines or {}).items()),
           *[str(Path(s).resolve()) for s in sources], str(Path(harness).resolve())]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise error(f"verilator could not compile {top} ({' '.join(gparams)}): {tail}")
    seconds = time.perf_counter() - t0
    try:                      # atomic: another process (a sweep worker, a test) may win
        tmp.rename(out)
    except OSError:
        if exe.is_file():     # it did: keep its model (it may be running it), drop ours
            shutil.rmtree(tmp, ignore_errors=True)
        else:                 # a folder without the executable (emptied by hand): replace
            shutil.rmtree(out, ignore_errors=True)
            tmp.rename(out)
    return Compiled(exe, seconds, False)


@dataclass
class StreamRun:
    outputs: list[list[int]]      # 32-bit words per output beat
    out_cycles: list[int]         # cycle each output beat was accepted
    cycles: int
    in_beats: int
    stalled: bool
    stats: list[int] | None = None
    seconds: float = 0.0          # CPU time of the simulation loop alone (one core)
    wall_seconds: float = 0.0     # its wall-clock time (longer when the machine is shared)


def run_harness(executable: Path, beats: list[list[int]], n_out: int, p_valid: float = 1.0,
                p_ready: float = 1.0, seed: int = 0, max_cycles: int | None = None,
                idle_cycles: int = 100_000, cwd: Path | None = None,
                error: type[Exception] = RuntimeError) -> StreamRun:
    """Stream ``beats`` in and ``n_out`` beats out (memory files are read from ``cwd``);
    the run ends as stalled after ``idle_cycles`` cycles without a beat in or out."""
    with tempfile.TemporaryDirectory() as tmp:
        fin, fout = Path(tmp) / "in.txt", Path(tmp) / "out.txt"
        fin.write_text("".join(" ".join(f"{w:08x}" for w in b) + "\n" for b in beats))
        limit = max_cycles or 100 * (len(beats) + n_out) + 10_000
        proc = subprocess.run([str(executable), str(fin), str(fout), str(n_out),
                               str(p_valid), str(p_ready), str(seed), str(limit),
                               str(idle_cycles)], capture_output=True, text=True, cwd=cwd)
        if proc.returncode != 0:
            raise error(f"the simulation model failed: {proc.stderr.strip()[-300:]}")
        lines = fout.read_text().strip().splitlines()
    summary = lines[-1].split()
    stats = None
    body = lines[:-1]
    if body and body[-1].startswith("stats"):
        stats = [int(v) for v in body[-1].split()[1:]]
        body = body[:-1]
    outs, cycles = [], []
    for line in body:
        parts = line.split()
        cycles.append(int(parts[0]))
        outs.append([int(w, 16) for w in parts[1:]])
    return StreamRun(outs, cycles, int(summary[1]), int(summary[3]), summary[7] == "1", stats,
                     float(summary[9]), float(summary[11]))


# ---------------------------------------------------------------- the UART shell (ECP5)
# An accelerator behind hw/rtl/uart_shell.v, simulated as uart_sim_top (shell + groupnet_top)
# with uart_harness.cpp: the host side of the serial line, bit by bit. Harness command line:
# ``IN OUT CLKS_PER_BIT MAX_CYCLES IDLE_CYCLES``; ``IN`` holds one step per line,
# ``<responses> <hex bytes>`` (send the bytes, then wait for that many response frames);
# ``OUT`` one line per response, ``<step start cycle> <done cycle> <hex>``, and a last line
# ``cycles C responses R stalled S seconds T wall_seconds W``.
UART_TOP = "uart_sim_top"
UART_HARNESS = "uart_harness.cpp"
UART_RTL = ("uart_rx.v", "uart_tx.v", "uart_shell.v")   # hw/rtl; the top is in hw/sim
UART_SIM_CLKS_PER_BIT = 8


def uart_sim_params(in_width: int, out_width: int, in_beats: int, out_beats: int,
                    clks_per_bit: int = UART_SIM_CLKS_PER_BIT, design_id: int = 0,
                    acc_timeout_cycles: int = 10_000_000) -> dict[str, int]:
    """uart_sim_top's parameters for a simulation at ``clks_per_bit`` clocks per bit (the
    shell only sees the ratio; 8 keeps whole images fast to simulate). The line timeout is
    64 characters: far above the gap between two bytes of a frame, short to simulate."""
    clk_hz = 1_000_000 * clks_per_bit
    return {"CLK_HZ": clk_hz, "BAUD": 1_000_000, "IN_WIDTH": in_width, "OUT_WIDTH": out_width,
            "IN_BEATS": in_beats, "OUT_BEATS": out_beats,
            "TIMEOUT_CYCLES": 64 * 10 * clks_per_bit, "ACC_TIMEOUT_CYCLES": acc_timeout_cycles,
            "DESIGN_ID": design_id}


def uart_gparams(params: dict[str, int]) -> tuple[str, ...]:
    return tuple(f"-G{k}={int(v)}" for k, v in params.items())


@dataclass
class UartRun:
    responses: list[bytes]        # each response frame's bytes, as received
    started: list[int]            # the cycle the step of each response began sending
    done: list[int]               # the cycle its last byte was received
    cycles: int
    stalled: bool
    seconds: float = 0.0
    wall_seconds: float = 0.0


def run_uart_harness(executable: Path, steps: list[tuple[int, bytes]], clks_per_bit: int,
                     max_cycles: int, idle_cycles: int, cwd: Path | None = None,
                     error: type[Exception] = RuntimeError) -> UartRun:
    """Send each step's bytes on the simulated line, then wait for its responses."""
    with tempfile.TemporaryDirectory() as tmp:
        fin, fout = Path(tmp) / "in.txt", Path(tmp) / "out.txt"
        fin.write_text("".join(f"{n} {bytes(data).hex() or '-'}\n" for n, data in steps))
        proc = subprocess.run([str(executable), str(fin), str(fout), str(clks_per_bit),
                               str(max_cycles), str(idle_cycles)],
                              capture_output=True, text=True, cwd=cwd)
        if proc.returncode != 0:
            raise error(f"the simulation model failed: {proc.stderr.strip()[-300:]}")
        lines = fout.read_text().strip().splitlines()
    summary = lines[-1].split()
    run = UartRun([], [], [], int(summary[1]), summary[5] == "1", float(summary[7]),
                  float(summary[9]))
    for line in lines[:-1]:
        start, done, data = line.split()
        run.started.append(int(start))
        run.done.append(int(done))
        run.responses.append(bytes.fromhex(data))
    return run
