"""Build and run Verilator models of this project's RTL (no Vivado involved).

Builds are cached by a content hash of the sources, parameters and harness, under
``~/.cache/groupnet/verilator`` (or ``GROUPNET_CACHE``): rebuilding the same design is
free. The one tool check for Verilator lives here.
"""

from __future__ import annotations

from groupnet.errors import UserError

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HARNESS = Path(__file__).with_name("stream_harness.cpp")
# Verilator's makefile puts its OPT_FAST (default -Os) after, so over, any -O in CXX_FLAGS:
# the per-cycle code gets -O2 through OPT_FAST (as fast as -O3 here, quicker to build);
# the code run once (initialization: OPT_SLOW) and Verilator's runtime library
# (OPT_GLOBAL) are built for compile speed.
VERILATOR_FLAGS = ["--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast",
                   "--noassert", "-Wno-fatal", "-Wno-WIDTH",
                   "-MAKEFLAGS", "OPT_FAST=-O2 OPT_SLOW=-O0 OPT_GLOBAL=-Os"]
POPCOUNT_HEADER = Path(__file__).with_name("verilated_popcount.h")
CXX_FLAGS = f"-march=native -include '{POPCOUNT_HEADER}'"


class SimError(UserError, RuntimeError):
    pass


def verilator() -> str:
    path = shutil.which("verilator")
    if path is None:
        raise SimError("verilator not found on PATH: install it with `apt-get install "
                       "verilator` (or `make system`)")
    return path


def cache_dir() -> Path:
    root = Path(os.environ.get("GROUPNET_CACHE", Path.home() / ".cache" / "groupnet"))
    return root / "verilator"


@dataclass
class Model:
    executable: Path
    build_seconds: float
    cached: bool


def build(sources: list[Path], top: str, params: dict[str, object],
          harness: Path = HARNESS, jobs: int = 2, defines: dict[str, int] | None = None) -> Model:
    """Verilate ``top`` with ``params`` and the stream harness; cached by content.
    ``defines``: C++ macros for the harness (e.g. STATS_WORDS)."""
    import time
    h = hashlib.sha256()
    for path in [*sources, harness, POPCOUNT_HEADER]:
        h.update(Path(path).read_bytes())
    h.update(repr(sorted(params.items())).encode())
    h.update(repr(sorted((defines or {}).items())).encode())
    h.update(top.encode())
    h.update(repr((VERILATOR_FLAGS, CXX_FLAGS)).encode())
    key = h.hexdigest()[:16]
    out = cache_dir() / f"{top}-{key}"
    exe = out / f"V{top}"
    if exe.exists():
        return Model(exe, 0.0, True)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    gparams = []
    for k, v in params.items():
        gparams.append(f'-G{k}="{v}"' if isinstance(v, str) else f"-G{k}={int(v)}")
    cmd = [verilator(), *VERILATOR_FLAGS, "-j", str(jobs),
           "--top-module", top, "-Mdir", str(tmp), *gparams,
           "-CFLAGS", f"{CXX_FLAGS} -DTOP_HEADER='\"V{top}.h\"' -DTOP_CLASS=V{top}"
                      + "".join(f" -D{k}={int(v)}" for k, v in (defines or {}).items()),
           *[str(Path(s).resolve()) for s in sources], str(harness.resolve())]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SimError(f"verilator failed for {top} ({' '.join(gparams)}):\n{tail}")
    seconds = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return Model(exe, seconds, False)


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


def run_stream(model: Model, beats: list[list[int]], n_out: int, p_valid: float = 1.0,
               p_ready: float = 1.0, seed: int = 0, max_cycles: int | None = None,
               cwd: Path | None = None, idle_cycles: int = 100_000) -> StreamRun:
    """Stream ``beats`` in and ``n_out`` beats out; memory files are read from ``cwd``.
    The run ends as stalled after ``idle_cycles`` cycles without a beat in or out."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        fin, fout = Path(tmp) / "in.txt", Path(tmp) / "out.txt"
        fin.write_text("\n".join(" ".join(f"{w:08x}" for w in b) for b in beats) + "\n")
        limit = max_cycles or 100 * (len(beats) + n_out) + 10_000
        proc = subprocess.run([str(model.executable), str(fin), str(fout), str(n_out),
                               str(p_valid), str(p_ready), str(seed), str(limit),
                               str(idle_cycles)],
                              capture_output=True, text=True, cwd=cwd)
        if proc.returncode != 0:
            raise SimError(f"simulation failed: {proc.stderr.strip()}")
        lines = fout.read_text().strip().splitlines()
    summary = lines[-1].split()
    stats = None
    if len(lines) > 1 and lines[-2].startswith("stats"):
        stats = [int(v) for v in lines[-2].split()[1:]]
        lines = lines[:-1]
    outs, cycles = [], []
    for line in lines[:-1]:
        parts = line.split()
        cycles.append(int(parts[0]))
        outs.append([int(w, 16) for w in parts[1:]])
    return StreamRun(outs, cycles, int(summary[1]), int(summary[3]), summary[7] == "1", stats,
                     float(summary[9]), float(summary[11]))


def pack(values: np.ndarray, bits: int) -> list[int]:
    """Pack a row of integers (element 0 in the LSBs, two's complement) into 32-bit words."""
    word_bits = len(values) * bits
    acc = 0
    for i, v in enumerate(values):
        acc |= (int(v) & ((1 << bits) - 1)) << (i * bits)
    return [(acc >> (32 * i)) & 0xFFFFFFFF for i in range((word_bits + 31) // 32)]


def unpack(words: list[int], count: int, bits: int, signed: bool) -> np.ndarray:
    acc = 0
    for i, w in enumerate(words):
        acc |= w << (32 * i)
    out = []
    for i in range(count):
        v = (acc >> (i * bits)) & ((1 << bits) - 1)
        if signed and v >> (bits - 1):
            v -= 1 << bits
        out.append(v)
    return np.asarray(out, dtype=np.int64)
