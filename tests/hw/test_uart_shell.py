"""The UART shell (hw/rtl/uart_shell.v) and its host protocol (groupnet_driver.uart_protocol):
the shell + a small accelerator stand-in in Verilator, the serial line simulated bit by bit,
driven through the same protocol code as the serial backend; every error answered with its
code and the shell still working afterwards."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from groupnet.hw.driver.groupnet_driver import Accelerator, DriverError
from groupnet.hw.driver.groupnet_driver import uart_protocol as proto
from groupnet.hw.driver.groupnet_driver.backends import SerialBackend, UartSimBackend
from groupnet.hw.driver.groupnet_driver.simulator import (UART_HARNESS, UART_RTL,
                                                                UART_TOP, run_uart_harness,
                                                                uart_sim_params)

ROOT = Path(__file__).resolve().parents[2]
BOARD_PY = ROOT / ".venv-board" / "bin" / "python"
DRIVER = ROOT / "hw" / "driver"
RTL, SIM = ROOT / "hw" / "rtl", ROOT / "hw" / "sim"

# the stand-in: 6 input beats of two UINT8 pixels (16 bits), 3 output beats of 20 bits (3
# bytes on the line, 4 bits of padding); output j = word(2j) + word(2j+1) + 1 (a word: the
# beat's 16 bits). It takes an input beat every third cycle (back-pressure on the shell)
# and hangs for good on a word 0xFFFF (until reset): the accelerator timeout.
IN_WIDTH, OUT_WIDTH, IN_BEATS, OUT_BEATS = 16, 20, 6, 3
STAND_IN = f"""// accelerator stand-in for tests/hw/test_uart_shell.py
module groupnet_top (
    input wire clk, input wire rst_n,
    input wire [{IN_WIDTH - 1}:0] in_tdata, input wire in_tvalid, output wire in_tready,
    output wire [{OUT_WIDTH - 1}:0] out_tdata, output wire out_tvalid, input wire out_tready);
    reg [1:0] tick;
    reg [{OUT_WIDTH - 1}:0] sum, od;
    reg n, ov, hung;
    assign in_tready = !ov && !hung && tick == 0;
    assign out_tdata = od;
    assign out_tvalid = ov;
    always @(posedge clk) begin
        if (!rst_n) begin
            tick <= 0; n <= 0; ov <= 0; sum <= 0; hung <= 0;
        end else begin
            tick <= (tick == 2) ? 2'd0 : tick + 1'b1;
            if (ov && out_tready) ov <= 0;
            if (in_tvalid && in_tready) begin
                if (in_tdata == {{{IN_WIDTH}{{1'b1}}}}) hung <= 1;
                else if (n) begin od <= sum + in_tdata + 1; ov <= 1; sum <= 0; n <= 0; end
                else begin sum <= sum + in_tdata; n <= 1; end
            end
        end
    end
endmodule
"""
ACC_TIMEOUT = 3000


def spec_dict() -> dict:
    return {
        "format": 1, "variant": "uart_stand_in", "dataset": "random", "classes": [],
        "board": "ulx3s-85f", "part": "LFE5U-85F-6BG381C", "platform": "ecp5-uart",
        "clock_mhz": 100.0, "model_input_shape": [1, 1, 6, 2], "model_input_dtype": "uint8",
        "host_transpose": [0, 2, 3, 1],
        "inputs": [{"name": "in", "dma": "uart", "datatype": "UINT8",
                    "shape_normal": [1, 6, 2, 1], "shape_folded": [1, 6, 2],
                    "shape_packed": [1, 6, 2]}],
        "outputs": [{"name": "out", "dma": "uart", "datatype": "INT20",
                     "shape_normal": [1, 3], "shape_folded": [1, 3, 1],
                     "shape_packed": [1, 3, 3]}],
        "task": "classification", "output_labels": False, "host_output_transpose": None,
        "estimated_cycles_per_frame": 20, "estimated_latency_cycles": 30,
        "uart": {"baud": 3_000_000},
    }


def reference(images: np.ndarray) -> np.ndarray:
    """The stand-in's outputs for (N, 1, 6, 2) uint8 images."""
    pixels = images.astype(np.int64)
    words = pixels[:, 0, :, 0] + 256 * pixels[:, 0, :, 1]
    return words[:, 0::2] + words[:, 1::2] + 1


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A deploy folder as an ECP5 build's: io_spec, validation images, sim/ with the shell,
    the stand-in, the UART top and harness."""
    out = tmp_path_factory.mktemp("uart") / "deploy"
    sim = out / "sim"
    (sim / "rtl").mkdir(parents=True)
    for name in UART_RTL:
        (sim / "rtl" / name).write_text((RTL / name).read_text())
    (sim / "uart_sim_top.v").write_text((SIM / "uart_sim_top.v").read_text())
    (sim / UART_HARNESS).write_text((SIM / UART_HARNESS).read_text())
    (sim / "rtl" / "groupnet_top.v").write_text(STAND_IN)
    params = uart_sim_params(IN_WIDTH, OUT_WIDTH, IN_BEATS, OUT_BEATS, design_id=0xDEADBEEF,
                             acc_timeout_cycles=ACC_TIMEOUT)
    (sim / "sim.json").write_text(json.dumps({
        "top": UART_TOP, "harness": UART_HARNESS, "shell": "uart", "params": params,
        "sources": ["rtl/groupnet_top.v", *[f"rtl/{n}" for n in UART_RTL], "uart_sim_top.v"]}))
    (out / "io_spec.json").write_text(json.dumps(spec_dict()))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(9, 1, 6, 2), dtype=np.uint8)   # 0xFFFF would hang it
    (out / "validation").mkdir()
    np.save(out / "validation" / "images.npy", images)
    np.save(out / "validation" / "labels.npy", reference(images).argmax(axis=1))
    np.save(out / "validation" / "expected_outputs.npy", reference(images))
    return out


@pytest.fixture(scope="module")
def accel(folder):
    return Accelerator(folder, backend="sim", batch_size=4, verbose=False)


def infer_request(image: np.ndarray) -> bytes:
    """An INFER frame for one (1, 6, 2) image, packed as the driver packs it."""
    from groupnet.hw.driver.groupnet_driver.datatypes import datatype
    from groupnet.hw.driver.groupnet_driver.packing import pack
    folded = image.transpose(1, 2, 0).reshape(6, 2)
    return proto.encode_infer(pack(folded, datatype("UINT8")))


# ------------------------------------------------------------------ protocol (no simulator)
def test_frames_encode_and_decode():
    assert proto.crc16(b"123456789") == 0x29B1            # CRC-16/CCITT-FALSE check value
    req = proto.encode_request(proto.CMD_INFER, b"\x01\x02\x03")
    assert req[:6] == bytes([0xA5, 0x01, 3, 0, 0, 0]) and req[6:9] == b"\x01\x02\x03"
    assert proto.crc16(req[1:]) == 0                      # CRC sent high byte first
    body = bytes([0x00]) + struct.pack("<I", 2) + b"\x07\x08"
    frame = bytes([0x5A]) + body + struct.pack(">H", proto.crc16(body))
    (resp,) = proto.decode_responses(frame)
    assert resp.ok and resp.payload == b"\x07\x08"
    with pytest.raises(proto.ProtocolError, match="checksum"):
        proto.decode_responses(frame[:-1] + bytes([frame[-1] ^ 1]))
    with pytest.raises(proto.ProtocolError, match="not 0x5a"):
        proto.decode_responses(b"\x00" + frame[1:])
    with pytest.raises(proto.ProtocolError, match="timeout"):
        proto.decode_responses(frame[:7])
    err = proto.Response(proto.E_CHECKSUM, b"")
    with pytest.raises(proto.ProtocolError, match="bad checksum") as info:
        err.check()
    assert info.value.status == proto.E_CHECKSUM
    assert proto.frame_bytes(784, 1, 10, 2) == (792, 32)


def test_serial_backend_without_pyserial_is_one_line(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "serial", None)
    with pytest.raises(DriverError, match="pip install pyserial"):
        Accelerator(folder, backend="serial", port="/dev/ttyUSB0", verbose=False)
    with pytest.raises(DriverError, match="--port"):
        Accelerator(folder, backend="serial", verbose=False)


def test_serial_backend_on_a_port_that_is_not_the_shell(folder):
    """pyserial's loopback port echoes the INFO request: one clear line, no hang."""
    pytest.importorskip("serial")
    with pytest.raises(DriverError, match="starts with 0xa5, not 0x5a"):
        Accelerator(folder, backend="serial", port="loop://", verbose=False)


# ------------------------------------------------------------------ the shell in Verilator
@pytest.mark.verilator
def test_info_and_bit_exact_round_trip(folder, accel):
    backend = accel.backend
    assert isinstance(backend, UartSimBackend) and accel.backend_name == "sim"
    info = backend.info
    assert (info.version, info.in_width, info.out_width, info.in_beats, info.out_beats,
            info.design_id) == (1, IN_WIDTH, OUT_WIDTH, IN_BEATS, OUT_BEATS, 0xDEADBEEF)
    assert info.baud * backend.clks_per_bit == info.clk_hz
    images = np.load(folder / "validation" / "images.npy")
    np.testing.assert_array_equal(accel.execute(images[:4]), reference(images[:4]))
    result = accel.validate()
    assert result["bit_exact"] and result["n"] == 9 and result["accuracy"] == 1.0
    speed = accel.throughput_test()
    # the stand-in takes a beat every third cycle: 6 beats -> at least 16 cycles per image
    assert 16 <= speed["accelerator_cycles_per_image"] < 40
    # one image per request: at least its bytes on the line both ways, 10 bits each
    req, resp = proto.frame_bytes(IN_BEATS, 2, OUT_BEATS, 3)
    assert speed["steady_cycles_per_frame"] >= (req + resp) * 10 * backend.clks_per_bit


@pytest.mark.verilator
def test_every_error_is_answered_and_the_shell_keeps_working(folder, accel):
    backend = accel.backend
    images = np.load(folder / "validation" / "images.npy")
    good = infer_request(images[0])
    bad_crc = good[:-1] + bytes([good[-1] ^ 0x40])
    bad_len = proto.encode_request(proto.CMD_INFER, good[6:-3])       # one byte short
    steps = [(1, bad_crc), (1, good),
             (1, bad_len), (1, good),
             (1, b"\x00\x13\x37"), (1, good),                         # bad magic: garbage
             (1, good[:10]), (1, good),                               # truncated: timeout
             (1, proto.encode_request(0x42)), (1, good),              # unknown command
             (1, proto.encode_request(proto.CMD_INFO, b"x")), (1, good)]  # INFO takes none
    run = backend.simulate(steps)
    assert not run.stalled and len(run.responses) == len(steps)
    got = [proto.decode_responses(r)[0] for r in run.responses]
    want = [proto.E_CHECKSUM, proto.E_LENGTH, proto.E_MAGIC, proto.E_TIMEOUT, proto.E_COMMAND,
            proto.E_LENGTH]
    assert [r.status for r in got[0::2]] == want
    assert all(not r.payload for r in got[0::2])
    for r in got[1::2]:
        beats, _ = proto.split_infer(r, OUT_BEATS, 3)
        value = beats.astype(np.int64) @ (1 << (8 * np.arange(3)))
        np.testing.assert_array_equal(value, reference(images[:1])[0])
    # a truncated frame is answered once the line has been quiet for the timeout, not before
    timeout = backend.timeout_cycles
    assert run.done[6] - run.started[6] >= 10 * 10 * backend.clks_per_bit + timeout


@pytest.mark.verilator
def test_overrun_and_a_hung_accelerator_are_answered(folder, accel):
    backend = accel.backend
    images = np.load(folder / "validation" / "images.npy")
    good = infer_request(images[1])
    hang = images[1].copy()
    hang[0, 2] = 255                               # beat 2 = 0xFFFF: the stand-in hangs
    steps = [(0, good), (2, b"\xA5\xA5"),          # bytes while it serves: ok, then overrun
             (1, good),
             (1, infer_request(hang)),             # no output: accelerator timeout (reset)
             (1, good)]
    run = backend.simulate(steps)
    assert not run.stalled
    got = [proto.decode_responses(r)[0] for r in run.responses]
    assert [r.status for r in got] == [proto.OK, proto.E_OVERRUN, proto.OK, proto.E_ACCEL,
                                       proto.OK]
    for r in (got[0], got[2], got[4]):
        beats, cycles = proto.split_infer(r, OUT_BEATS, 3)
        np.testing.assert_array_equal(beats.astype(np.int64) @ (1 << (8 * np.arange(3))),
                                      reference(images[1:2])[0])
        assert 0 < cycles < 100


@pytest.mark.verilator
def test_the_line_tolerates_a_host_baud_rate_a_few_percent_off(folder, accel):
    """The host's bits 3% longer or shorter than the shell's (its clock not a multiple of the
    baud rate): both UARTs still sample every bit inside it."""
    backend = accel.backend
    images = np.load(folder / "validation" / "images.npy")
    good = infer_request(images[2])
    for ratio in (0.97, 1.03):
        run = run_uart_harness(backend.executable, [(1, proto.encode_info()), (1, good)],
                               backend.clks_per_bit * ratio, 2_000_000, 100_000,
                               error=DriverError)
        info, result = [proto.decode_responses(r)[0] for r in run.responses]
        assert proto.ShellInfo.decode(info).in_beats == IN_BEATS
        beats, _ = proto.split_infer(result, OUT_BEATS, 3)
        np.testing.assert_array_equal(beats.astype(np.int64) @ (1 << (8 * np.arange(3))),
                                      reference(images[2:3])[0])


class SimulatedPort:
    """A serial port whose far end is the simulated shell: what is written is sent on the
    simulated line when the driver reads (one request at a time, as the driver does)."""

    def __init__(self, backend: UartSimBackend):
        self.backend, self.pending, self.rx, self.name = backend, b"", b"", "simulated-port"

    def write(self, data: bytes) -> int:
        self.pending += bytes(data)
        return len(data)

    def read(self, n: int) -> bytes:
        if not self.rx and self.pending:
            run = self.backend.simulate([(1, self.pending)])
            self.pending, self.rx = b"", b"".join(run.responses)
        out, self.rx = self.rx[:n], self.rx[n:]
        return out


@pytest.mark.verilator
def test_serial_backend_speaks_to_the_shell(folder, accel):
    port = SimulatedPort(accel.backend)
    board = Accelerator(folder, backend="auto", batch_size=3, port=port, verbose=False)
    assert isinstance(board.backend, SerialBackend) and board.backend_name == "serial"
    assert board.backend.info.design_id == 0xDEADBEEF
    images = np.load(folder / "validation" / "images.npy")
    np.testing.assert_array_equal(board.execute(images[:3]), reference(images[:3]))
    assert board.validate()["bit_exact"]
    speed = board.throughput_test()
    assert speed["backend"] == "serial" and speed["accelerator_cycles_per_image"] > 0
    # the shell checks it is the right bitstream
    spec = json.loads((folder / "io_spec.json").read_text())
    other = folder.parent / "other"
    other.mkdir(exist_ok=True)
    spec["inputs"][0]["shape_folded"] = [1, 3, 4]
    spec["inputs"][0]["shape_packed"] = [1, 3, 3]
    (other / "io_spec.json").write_text(json.dumps(spec))
    with pytest.raises(DriverError, match="another accelerator"):
        Accelerator(other, backend="serial", port=SimulatedPort(accel.backend), verbose=False)


@pytest.mark.verilator
@pytest.mark.skipif(not BOARD_PY.exists(), reason="no board-like venv (`make board-venv`)")
def test_uart_driver_in_board_like_venv(folder, accel, tmp_path):
    """The deployed driver's command line, as on a laptop next to the board: Python 3.10,
    numpy<2, pyserial, no torch/onnx/finn; sim when no port is given."""
    out = tmp_path / "deploy"
    shutil.copytree(folder, out)
    shutil.copytree(DRIVER / "groupnet_driver", out / "groupnet_driver",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(DRIVER / "driver.py", out / "driver.py")
    run = subprocess.run([str(BOARD_PY), str(out / "driver.py"), "--exec_mode", "validate",
                          "--batchsize", "5", "--json"], capture_output=True, text=True, cwd="/")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["backend"] == "sim" and result["bit_exact"] and result["n"] == 9
    assert "UART shell" in run.stderr and "no --port given" in run.stderr
    bad = subprocess.run([str(BOARD_PY), str(out / "driver.py"), "--backend", "serial",
                          "--port", "loop://"], capture_output=True, text=True, cwd="/")
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "0x5a" in bad.stderr


def behind_the_shell(deploy_dir: Path, clks_per_bit: int) -> None:
    """Turn a deploy folder (made for a PYNQ board) into one whose accelerator sits behind
    the UART shell, as an ECP5 build's: io_spec's ``uart`` entry, the shell's RTL, the UART
    simulation top and harness in ``sim/``."""
    from groupnet.hw.driver.groupnet_driver.backends import shell_shape
    from groupnet.hw.driver.groupnet_driver.spec import IOSpec
    spec = json.loads((deploy_dir / "io_spec.json").read_text())
    spec.update(platform="ecp5-uart", uart={"baud": 3_000_000})
    (deploy_dir / "io_spec.json").write_text(json.dumps(spec))
    sim = deploy_dir / "sim"
    desc = json.loads((sim / "sim.json").read_text())
    assert desc["top"] == "groupnet_top"
    for name in UART_RTL:
        shutil.copy2(RTL / name, sim / "rtl" / name)
    shutil.copy2(SIM / "uart_sim_top.v", sim / "uart_sim_top.v")
    shutil.copy2(SIM / UART_HARNESS, sim / UART_HARNESS)
    params = uart_sim_params(**shell_shape(IOSpec.load(deploy_dir / "io_spec.json")),
                             clks_per_bit=clks_per_bit)
    desc.update(top=UART_TOP, harness=UART_HARNESS, shell="uart", params=params,
                sources=[*desc["sources"], *[f"rtl/{n}" for n in UART_RTL], "uart_sim_top.v"])
    (sim / "sim.json").write_text(json.dumps(desc, indent=2))


@pytest.mark.slow
@pytest.mark.verilator
def test_a_real_accelerator_behind_the_shell_is_bit_exact(tiny_build, fmnist_test, tmp_path):
    """A tiny Group-Net's stitched accelerator behind the shell, real test images, the line
    at a board's ratio (100 MHz / 3 Mbaud: 33 clocks per bit)."""
    from groupnet.hw.deploy.package import deploy
    from groupnet.hw.sim.run import reference_outputs
    build = tiny_build()
    out = tmp_path / "deploy"
    images, labels = fmnist_test[0][:6], fmnist_test[1][:6]
    deploy(build, out, images, labels)
    behind_the_shell(out, clks_per_bit=33)
    accel = Accelerator(out, backend="sim", batch_size=3, verbose=False)
    assert isinstance(accel.backend, UartSimBackend)
    np.testing.assert_array_equal(accel.execute(images[:3]), reference_outputs(build, images[:3]))
    result = accel.validate()
    assert result["bit_exact"] and result["n"] == 6
    speed = accel.throughput_test()
    spec = accel.spec
    req, resp = proto.frame_bytes(spec.input.beats, spec.input.shape_packed[-1],
                                  spec.output.beats, spec.output.shape_packed[-1])
    line = (req + resp) * 10 * 33
    # an image's period: its bytes on the line both ways plus the accelerator's own run
    assert line < speed["steady_cycles_per_frame"] < line + 2 * speed[
        "accelerator_cycles_per_image"] + 2000
    print(json.dumps({**{k: speed[k] for k in ("steady_cycles_per_frame",
                                               "steady_throughput[images/s]",
                                               "accelerator_cycles_per_image",
                                               "simulation_wall_s")},
                      "validate_wall_s_6_images": result["wall_seconds"]}),
          "request/response bytes", req, resp)


@pytest.mark.yosys
def test_the_shell_synthesizes_for_ecp5(tmp_path):
    """Yosys read_verilog + synth_ecp5: the image buffer in block RAM, no latch, no black
    box (a 24-bit x 1,024-beat input: two DP16KD)."""
    from groupnet.hw.synth import yosys
    for n in UART_RTL:          # the flow's Yosys (YoWASP) reads under its working folder
        shutil.copy(RTL / n, tmp_path / Path(n).name)
    srcs = " ".join(Path(n).name for n in UART_RTL)
    run = subprocess.run([yosys(), "-q", "-p",
                          f"read_verilog {srcs}; chparam -set IN_WIDTH 24 -set OUT_WIDTH 20 "
                          "-set IN_BEATS 1024 -set OUT_BEATS 10 uart_shell; "
                          "synth_ecp5 -top uart_shell; tee -q -o stat.json stat -json"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-500:]
    cells = json.loads((tmp_path / "stat.json").read_text())["design"]["num_cells_by_type"]
    cells = {c: int(n) for c, n in cells.items() if c != "$scopeinfo"}   # (no logic)
    assert cells.get("DP16KD") == 2
    assert not [c for c in cells if "LATCH" in c.upper() or c.startswith("$")]
    assert cells["LUT4"] < 2000 and cells["TRELLIS_FF"] < 1000
