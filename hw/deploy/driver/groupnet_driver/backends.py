"""Where frames run: a PYNQ board (``PynqBackend``) or the cycle-accurate Verilator model of
the same accelerator (``SimBackend``). Both take and return *packed* bytes, exactly the DMA
buffers, so the packing the board needs is the packing the simulator checks.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .packing import bytes_to_words, words_to_bytes
from .simulator import cache_root, compile_model, idle_limit, run_harness
from .spec import DriverError, IOSpec

# FINN's IODMA (an HLS block with AXI-lite control): control register and arguments
AP_CTRL, ADDR, REPS = 0x00, 0x10, 0x1C
AP_START, AP_DONE, AP_IDLE = 0x1, 0x2, 0x4
# portable build of the simulator (no -march=native: the folder may move to another
# machine); the flags and the harness protocol are simulator.py's
CXX_FLAGS = ""


class PynqBackend:
    """The accelerator on a PYNQ board: FINN's block design (``idma0`` -> accelerator ->
    ``odma0``), buffers from ``pynq.allocate``. Written against FINN's IODMA register map;
    not run on a board here (no board was available: see the README)."""

    name = "pynq"

    def __init__(self, spec: IOSpec, bitfile: Path, batch_size: int, fclk_mhz: float,
                 device=None, download: bool = True):
        if not Path(bitfile).is_file():
            raise DriverError(f"{bitfile}: no bitfile (this build ran without Vivado); build "
                              "with Vivado and run `groupnet deploy` again, or use "
                              "backend='sim'")
        if not Path(bitfile).with_suffix(".hwh").is_file():
            raise DriverError(f"{Path(bitfile).with_suffix('.hwh')}: the .hwh must sit next "
                              "to the bitfile with the same name")
        try:
            import pynq
        except ImportError:
            raise DriverError("the pynq package is not installed: run on a PYNQ board image "
                              "(or pip install pynq), or use backend='sim'") from None
        self.pynq, self.spec, self.fclk_mhz = pynq, spec, fclk_mhz
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.overlay = pynq.Overlay(str(bitfile), download=download, device=device)
        except RuntimeError as err:
            raise DriverError(f"no PYNQ device found ({err}): run this on the board, as "
                              "root (sudo), or use backend='sim'") from None
        if spec.platform == "zynq-iodma":
            pynq.Clocks.fclk0_mhz = fclk_mhz
        self.idma = getattr(self.overlay, spec.input.dma)
        self.odma = getattr(self.overlay, spec.output.dma)
        self.reason = f"PYNQ board, {Path(bitfile).name}"
        self.allocate(batch_size)

    def allocate(self, batch_size: int) -> None:
        self.batch_size = batch_size
        shape_in = (batch_size, *self.spec.input.shape_packed[1:])
        shape_out = (batch_size, *self.spec.output.shape_packed[1:])
        self.ibuf = self.pynq.allocate(shape=shape_in, dtype=np.uint8)
        self.obuf = self.pynq.allocate(shape=shape_out, dtype=np.uint8)

    def run(self, packed: np.ndarray) -> tuple[np.ndarray, dict]:
        n = len(packed)
        self.ibuf[:n] = packed
        self.ibuf.sync_to_device()
        if not self.odma.read(AP_CTRL) & AP_IDLE:
            raise DriverError(f"{self.spec.output.dma} is not idle: a previous run did not "
                              "finish; reload the overlay (Accelerator(..., download=True))")
        t0 = time.perf_counter()
        for dma, buf in ((self.odma, self.obuf), (self.idma, self.ibuf)):  # output side first
            dma.write(ADDR, buf.device_address)
            dma.write(REPS, n)
            dma.write(AP_CTRL, AP_START)
        while not self.odma.read(AP_CTRL) & AP_DONE:
            pass
        seconds = time.perf_counter() - t0
        self.obuf.sync_from_device()
        return np.array(self.obuf[:n]), {"seconds": seconds}


class SimBackend:
    """The accelerator's cycle-accurate RTL model (Verilator), shipped as sources in the
    deploy folder's ``sim/`` and compiled once on first use (needs ``verilator`` and g++;
    cached under ``~/.cache/groupnet/driver-sim``, or ``$GROUPNET_CACHE/driver-sim``).
    Time is simulated: runtimes are cycles at the accelerator clock."""

    name = "sim"

    def __init__(self, spec: IOSpec, folder: Path, batch_size: int, fclk_mhz: float,
                 verbose: bool = True):
        self.spec, self.folder, self.fclk_mhz = spec, Path(folder).resolve(), fclk_mhz
        desc = self.folder / "sim.json"
        if not desc.is_file():
            raise DriverError(f"{desc} not found: this deploy folder has no simulation model "
                              "(run `groupnet deploy` again)")
        self.desc = json.loads(desc.read_text())
        self.executable = self._build(verbose)
        self.reason = "cycle-accurate Verilator model of the accelerator's RTL"
        self.batch_size = batch_size

    def allocate(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def _build(self, verbose: bool) -> Path:
        sources = [self.folder / src for src in self.desc["sources"]]
        done = compile_model(sources, self.folder / self.desc["harness"], self.desc["top"],
                             cache_root("driver-sim"), CXX_FLAGS, jobs=os.cpu_count() or 1,
                             error=DriverError, verbose=verbose)
        return done.executable

    def run(self, packed: np.ndarray, p_ready: float = 1.0, seed: int = 0
            ) -> tuple[np.ndarray, dict]:
        spec, n = self.spec, len(packed)
        beats_in = packed.reshape(n * spec.input.beats, spec.input.shape_packed[-1])
        words = bytes_to_words(beats_in)
        n_out = n * spec.output.beats
        per_frame = spec.estimated_cycles_per_frame or 100_000
        limit = 100 * per_frame * (n + 2) + 100_000
        idle = idle_limit(per_frame, spec.raw.get("estimated_latency_cycles"))
        t0 = time.perf_counter()
        run = run_harness(self.executable, words.tolist(), n_out, 1.0, p_ready, seed, limit,
                          idle, cwd=self.folder, error=DriverError)
        wall = time.perf_counter() - t0
        if run.stalled or len(run.outputs) < n_out:
            raise DriverError(f"the simulated accelerator stopped after {len(run.outputs)} "
                              f"of {n_out} output beats: a stuck stream (see `groupnet sim`)")
        beats = [[c, *w] for c, w in zip(run.out_cycles, run.outputs)]
        summary = {"cycles": run.cycles}
        out_words = np.array([b[1:] for b in beats], dtype=np.uint32)
        out = words_to_bytes(out_words, spec.output.shape_packed[-1])
        done = np.array([b[0] for b in beats])[spec.output.beats - 1::spec.output.beats]
        return (out.reshape(n, *spec.output.shape_packed[1:]),
                {"cycles": summary["cycles"], "frame_done_cycles": done, "wall_seconds": wall})
