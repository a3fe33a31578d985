"""Where frames run: a PYNQ board (``PynqBackend``) or the cycle-accurate Verilator model of
the same accelerator (``SimBackend``); for a board whose accelerator sits behind the UART
shell (``hw/rtl/uart_shell.v``, the ECP5 builds), the board on a serial port
(``SerialBackend``) or the shell + accelerator in Verilator with the serial line simulated
bit by bit (``UartSimBackend``), both through the one protocol module (``uart_protocol``).
All take and return *packed* bytes, exactly the DMA buffers (or the frames' payloads), so
the packing the board needs is the packing the simulator checks.
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
from . import uart_protocol as proto
from .simulator import (cache_root, compile_model, idle_limit, run_harness, run_uart_harness,
                        uart_gparams)
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


# ---------------------------------------------------------------- the UART shell
def is_uart_spec(spec: IOSpec) -> bool:
    """Whether the deploy folder's accelerator sits behind the UART shell (an ECP5 build:
    ``io_spec.json`` has a ``uart`` entry or a ``*uart`` platform)."""
    return "uart" in spec.raw or spec.platform.endswith("uart")


def shell_shape(spec: IOSpec) -> dict[str, int]:
    """The shell parameters this accelerator needs: stream widths (bits) and beats."""
    width = lambda port: port.shape_folded[-1] * port.datatype.bits  # noqa: E731
    return {"in_width": width(spec.input), "out_width": width(spec.output),
            "in_beats": spec.input.beats, "out_beats": spec.output.beats}


def _decode_infer(spec: IOSpec, responses: list[proto.Response]
                  ) -> tuple[np.ndarray, list[int]]:
    out_bytes = spec.output.shape_packed[-1]
    outs, cycles = [], []
    for i, resp in enumerate(responses):
        try:
            beats, c = proto.split_infer(resp, spec.output.beats, out_bytes)
        except proto.ProtocolError as err:
            raise proto.ProtocolError(f"image {i}: {err}", err.status) from None
        outs.append(beats)
        cycles.append(c)
    out = np.stack(outs) if outs else np.zeros((0, spec.output.beats, out_bytes), np.uint8)
    return out.reshape(len(responses), *spec.output.shape_packed[1:]), cycles


class SerialBackend:
    """The accelerator on a board behind the UART shell (a ULX3S: its FT231X USB-UART, up to
    3 Mbaud), one INFER request per image. ``port``: a device (``/dev/ttyUSB0``, ``COM3``),
    a pyserial URL, or an open port object with ``read``/``write`` (tests). On opening, the
    shell's INFO is checked against this deploy folder (widths, beats, design id)."""

    name = "serial"

    def __init__(self, spec: IOSpec, port, baud: int | None, batch_size: int,
                 fclk_mhz: float, timeout: float = 2.0):
        uart = spec.raw.get("uart") or {}
        self.spec, self.fclk_mhz, self.batch_size = spec, fclk_mhz, batch_size
        self.baud = int(baud or uart.get("baud") or 3_000_000)
        if port is None:
            raise DriverError("the serial backend needs the board's port: --port /dev/ttyUSB0 "
                              "(Accelerator(..., port=...))")
        if isinstance(port, (str, Path)):
            try:
                import serial
            except ImportError:
                raise DriverError("the serial backend needs pyserial: pip install pyserial") \
                    from None
            try:
                self.port = serial.serial_for_url(str(port), baudrate=self.baud, timeout=timeout)
            except (serial.SerialException, ValueError) as err:
                raise DriverError(f"cannot open {port} at {self.baud} baud: {err}") from None
            name = str(port)
        else:
            self.port, name = port, getattr(port, "name", type(port).__name__)
        if hasattr(self.port, "reset_input_buffer"):
            self.port.reset_input_buffer()           # bytes left from an earlier session
        self.info = proto.ShellInfo.decode(self.transact(proto.encode_info()))
        self.info.check(**shell_shape(spec), design_id=uart.get("design_id"))
        self.reason = (f"board on {name} at {self.baud} baud (UART shell v{self.info.version}, "
                       f"accelerator clock {self.info.clk_hz / 1e6:g} MHz)")

    def allocate(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def transact(self, request: bytes) -> proto.Response:
        """Send one request, read its response."""
        self.port.write(request)
        if hasattr(self.port, "flush"):
            self.port.flush()
        return proto.read_response(self.port.read)

    def run(self, packed: np.ndarray) -> tuple[np.ndarray, dict]:
        t0 = time.perf_counter()
        responses = [self.transact(proto.encode_infer(img)) for img in packed]
        seconds = time.perf_counter() - t0
        out, cycles = _decode_infer(self.spec, responses)
        return out, {"seconds": seconds, "accel_cycles": np.array(cycles),
                     "accel_clk_hz": self.info.clk_hz}

    def close(self) -> None:
        if hasattr(self.port, "close"):
            self.port.close()


class UartSimBackend:
    """The accelerator behind its UART shell, cycle-accurate in Verilator: ``uart_sim_top``
    (shell + stitched accelerator) with ``uart_harness.cpp`` as the host side of the line,
    every bit simulated; requests and responses go through ``uart_protocol`` as on the
    board. ``sim.json``: ``top``, ``sources``, ``harness``, ``shell: "uart"`` and ``params``
    (uart_sim_top's parameters, ``simulator.uart_sim_params``). Runtimes are cycles at the
    accelerator clock when the simulated clocks per bit are the board's (CLK_HZ / BAUD)."""

    name = "sim"

    def __init__(self, spec: IOSpec, folder: Path, desc: dict, batch_size: int,
                 fclk_mhz: float, verbose: bool = True):
        self.spec, self.folder, self.desc = spec, Path(folder).resolve(), desc
        self.fclk_mhz, self.batch_size = fclk_mhz, batch_size
        params = desc["params"]
        self.clks_per_bit = (params["CLK_HZ"] + params["BAUD"] // 2) // params["BAUD"]
        sources = [self.folder / src for src in desc["sources"]]
        self.executable = compile_model(
            sources, self.folder / desc["harness"], desc["top"], cache_root("driver-sim"),
            CXX_FLAGS, uart_gparams(params), jobs=os.cpu_count() or 1, error=DriverError,
            verbose=verbose).executable
        self.timeout_cycles = int(params["TIMEOUT_CYCLES"])
        self.info = proto.ShellInfo.decode(self.exchange([proto.encode_info()])[0])
        self.info.check(**shell_shape(spec), design_id=params.get("DESIGN_ID"))
        self.reason = ("cycle-accurate Verilator model of the accelerator behind its UART "
                       f"shell (the line simulated bit by bit, {self.clks_per_bit} clocks "
                       "per bit)")

    def allocate(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def simulate(self, steps: list[tuple[int, bytes]], max_cycles: int | None = None):
        """Run the harness: each step's bytes sent, then its responses awaited."""
        per_frame = self.spec.estimated_cycles_per_frame or 100_000
        line = 10 * self.clks_per_bit
        idle = max(idle_limit(per_frame, self.spec.raw.get("estimated_latency_cycles")),
                   2 * self.timeout_cycles + 4 * line)
        total = sum(len(b) for _, b in steps)
        limit = max_cycles or (line * 2 * total + len(steps) * (2 * idle + 1000) + 100_000)
        return run_uart_harness(self.executable, steps, self.clks_per_bit, limit, idle,
                                cwd=self.folder, error=DriverError)

    def exchange(self, requests: list[bytes]) -> list[proto.Response]:
        """Requests one after the other (each after the previous response), decoded."""
        run = self.simulate([(1, r) for r in requests])
        self.last = run
        if run.stalled or len(run.responses) < len(requests):
            raise DriverError(f"the simulated shell answered {len(run.responses)} of "
                              f"{len(requests)} requests (stuck after cycle {run.cycles})")
        return [proto.decode_responses(r)[0] for r in run.responses]

    def run(self, packed: np.ndarray) -> tuple[np.ndarray, dict]:
        t0 = time.perf_counter()
        responses = self.exchange([proto.encode_infer(img) for img in packed])
        wall = time.perf_counter() - t0
        out, cycles = _decode_infer(self.spec, responses)
        run = self.last
        return out, {"cycles": run.cycles, "frame_done_cycles": np.array(run.done),
                     "wall_seconds": wall, "accel_cycles": np.array(cycles),
                     "accel_clk_hz": self.fclk_mhz * 1e6}


def sim_backend(spec: IOSpec, folder: Path, batch_size: int, fclk_mhz: float,
                verbose: bool = True):
    """The simulator of a deploy folder: the UART shell's (``sim.json`` with ``shell:
    "uart"``) or the bare accelerator's."""
    desc = Path(folder) / "sim.json"
    if desc.is_file():
        d = json.loads(desc.read_text())
        if d.get("shell") == "uart":
            return UartSimBackend(spec, folder, d, batch_size, fclk_mhz, verbose)
    return SimBackend(spec, folder, batch_size, fclk_mhz, verbose)
