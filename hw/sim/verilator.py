"""Build and run Verilator models of this project's RTL (no Vivado involved).

Builds are cached by a content hash of the sources, parameters and harness, under
``~/.cache/groupnet/verilator`` (or ``GROUPNET_CACHE``): rebuilding the same design is
free. The one tool check for Verilator lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from groupnet.errors import UserError

from ..driver.groupnet_driver.simulator import (VERILATOR_FLAGS, StreamRun,  # noqa: F401
                                                      cache_root, compile_model,
                                                      find_verilator, run_harness)

HARNESS = Path(__file__).with_name("stream_harness.cpp")
# here (not in a deploy folder, which may move to another machine): the host's CPU, and
# $countones as the POPCNT builtin (a force-included header)
POPCOUNT_HEADER = Path(__file__).with_name("verilated_popcount.h")
CXX_FLAGS = f"-march=native -include '{POPCOUNT_HEADER}'"


class SimError(UserError, RuntimeError):
    pass


def verilator() -> str:
    return find_verilator(SimError)


def cache_dir() -> Path:
    return cache_root("verilator")


@dataclass
class Model:
    executable: Path
    build_seconds: float
    cached: bool


def build(sources: list[Path], top: str, params: dict[str, object],
          harness: Path = HARNESS, jobs: int = 2, defines: dict[str, int] | None = None,
          opt_fast: str = "-O2", verbose: bool = False,
          extra_flags: tuple[str, ...] = ()) -> Model:
    """Verilate ``top`` with ``params`` and the stream harness; cached by content.
    ``defines``: C++ macros for the harness (e.g. STATS_WORDS). ``opt_fast``: the C++
    optimisation of the per-cycle code (a gate-level netlist, simulated for a few frames,
    compiles faster at -O1). ``verbose``: say so on stderr when a compile starts.
    ``extra_flags``: added to Verilator's (part of the cache key)."""
    gparams = tuple(f'-G{k}="{v}"' if isinstance(v, str) else f"-G{k}={int(v)}"
                    for k, v in params.items())
    done = compile_model(sources, harness, top, cache_dir(), CXX_FLAGS, gparams, defines,
                         jobs, extra_inputs=(POPCOUNT_HEADER,), error=SimError,
                         opt_fast=opt_fast, verbose=verbose, extra_flags=extra_flags)
    return Model(done.executable, done.build_seconds, done.cached)


def run_stream(model: Model, beats: list[list[int]], n_out: int, p_valid: float = 1.0,
               p_ready: float = 1.0, seed: int = 0, max_cycles: int | None = None,
               cwd: Path | None = None, idle_cycles: int = 100_000) -> StreamRun:
    """Stream ``beats`` in and ``n_out`` beats out; memory files are read from ``cwd``.
    The run ends as stalled after ``idle_cycles`` cycles without a beat in or out."""
    return run_harness(model.executable, beats, n_out, p_valid, p_ready, seed, max_cycles,
                       idle_cycles, cwd, error=SimError)


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
