"""``groupnet deploy`` and the on-board driver, run against the simulator backend, a fake
PYNQ (FINN's IODMA register map over the simulator) and the board-like venv."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from groupnet.hw.driver.groupnet_driver import Accelerator, DriverError
from groupnet.hw.driver.groupnet_driver import backends
from groupnet.hw.deploy.package import DeployError, deploy
from groupnet.hw.sim.run import reference_outputs

ROOT = Path(__file__).resolve().parents[2]
BOARD_PY = ROOT / ".venv-board" / "bin" / "python"


@pytest.fixture(scope="module")
def dep(tiny_build, fmnist_test, tmp_path_factory):
    build = tiny_build()
    out = tmp_path_factory.mktemp("deploy") / "accel"
    images, labels = fmnist_test[0][:24], fmnist_test[1][:24]
    summary = deploy(build, out, images, labels)
    return build, out, summary


def test_io_spec_is_read_from_the_build(dep):
    build, out, _ = dep
    spec = json.loads((out / "io_spec.json").read_text())
    (inp,), (outp,) = spec["inputs"], spec["outputs"]
    assert spec["model_input_shape"] == [1, 1, 28, 28] and spec["host_transpose"] == [0, 2, 3, 1]
    assert inp["shape_normal"] == [1, 28, 28, 1] and inp["datatype"] == "UINT8"
    assert np.prod(inp["shape_folded"]) == np.prod(inp["shape_normal"])
    assert np.prod(outp["shape_folded"]) == np.prod(outp["shape_normal"]) == 10
    assert spec["estimated_cycles_per_frame"] > 0
    # the packed shapes the driver allocates are FINN's for the same folded tensors
    from finn.util.data_packing import finnpy_to_packed_bytearray
    from qonnx.core.datatype import DataType
    from groupnet.hw.driver.groupnet_driver.spec import IOSpec
    loaded = IOSpec.load(out / "io_spec.json")
    for port, mine in ((inp, loaded.input), (outp, loaded.output)):
        zeros = np.zeros(port["shape_folded"], np.float32)
        finn = finnpy_to_packed_bytearray(zeros, DataType[port["datatype"]], True, True)
        assert list(finn.shape) == port["shape_packed"] == list(mine.shape_packed)


def test_deploy_refuses_to_overwrite_and_needs_a_build(dep, tmp_path, fmnist_test):
    build, out, _ = dep
    with pytest.raises(DeployError, match="--force"):
        deploy(build, out, *[a[:2] for a in fmnist_test])
    with pytest.raises(DeployError, match="run `groupnet build"):
        deploy(tmp_path, tmp_path / "x", *[a[:2] for a in fmnist_test])


@pytest.mark.verilator
def test_sim_backend_is_bit_exact_with_the_compiler(dep, fmnist_test):
    build, out, summary = dep
    accel = Accelerator(out, backend="sim", batch_size=10, verbose=False)
    assert accel.backend_name == "sim"
    images = fmnist_test[0][:7]
    np.testing.assert_array_equal(accel.execute(images), reference_outputs(build, images))
    result = accel.validate()
    assert result["bit_exact"] and result["n"] == 24
    assert result["accuracy"] == pytest.approx(summary["validation_accuracy_expected"])
    speed = accel.throughput_test()
    assert speed["backend"] == "sim" and speed["batch_size"] == 10
    # simulated steady state at the analytical bottleneck bound: FINN's cycle model, which
    # this project's sliding window beats by up to its fill (as in test_sim.py)
    assert speed["steady_cycles_per_frame"] >= 0.95 * accel.spec.estimated_cycles_per_frame


@pytest.mark.verilator
def test_bad_input_is_one_clear_line(dep, fmnist_test):
    _, out, _ = dep
    accel = Accelerator(out, backend="sim", batch_size=4, verbose=False)
    images = fmnist_test[0][:4]
    with pytest.raises(DriverError, match=r"shape \(4, 28, 28\): expected \(N, 1, 28, 28\)"):
        accel.execute(images[:, 0])
    with pytest.raises(DriverError, match="dtype float32: expected uint8"):
        accel.execute(images.astype(np.float32))
    with pytest.raises(DriverError, match="batch of 5 images is larger than the buffers"):
        accel.execute(fmnist_test[0][:5])
    accel.batch_size = 5
    assert accel.execute(fmnist_test[0][:5]).shape == (5, 10)
    with pytest.raises(DriverError, match="positive integer"):
        accel.batch_size = 0


def test_board_errors_without_bitfile_or_device(dep, monkeypatch):
    _, out, _ = dep
    with pytest.raises(DriverError, match="no bitfile"):
        Accelerator(out, backend="pynq", verbose=False)
    with pytest.raises(DriverError, match=r"--bitfile /nonexistent.bit: no such file"):
        Accelerator(out, backend="pynq", bitfile="/nonexistent.bit", verbose=False)
    with pytest.raises(DriverError, match=r"test_deploy.hwh: the .hwh must sit next"):
        Accelerator(out, backend="pynq", bitfile=__file__, verbose=False)
    monkeypatch.setitem(sys.modules, "pynq", None)            # as on a laptop
    tmp = out.parent / "bit"
    tmp.mkdir(exist_ok=True)
    (tmp / "a.bit").write_bytes(b"")
    (tmp / "a.hwh").write_bytes(b"")
    with pytest.raises(DriverError, match="pynq package is not installed"):
        Accelerator(out, backend="pynq", bitfile=tmp / "a.bit", verbose=False)
    with pytest.raises(DriverError, match="io_spec.json not found"):
        Accelerator(out / "nowhere", verbose=False)
    monkeypatch.setenv("PATH", "")                # no verilator, and no model compiled yet
    monkeypatch.setenv("GROUPNET_CACHE", str(tmp / "empty-cache"))
    with pytest.raises(DriverError, match="needs verilator"):
        Accelerator(out, backend="sim", verbose=False)


class FakeMMIO:
    """One of FINN's IODMAs: ap_ctrl at 0x00, buffer address at 0x10, repetitions at 0x1C."""

    def __init__(self, board, role):
        self.board, self.role, self.regs = board, role, {backends.AP_CTRL: backends.AP_IDLE}

    def write(self, addr, value):
        self.regs[addr] = value
        if addr == backends.AP_CTRL and value & backends.AP_START:
            self.regs[addr] = 0                       # running
            self.board.started(self.role)

    def read(self, addr):
        return self.regs.get(addr, 0)


class FakeBoard:
    """A PYNQ board whose accelerator is the simulator backend: DMA buffers in, out."""

    def __init__(self, sim):
        self.sim, self.memory, self.order, self.fclk = sim, {}, [], None
        self.idma0, self.odma0 = FakeMMIO(self, "in"), FakeMMIO(self, "out")

    def allocate(self, shape, dtype):
        buf = np.zeros(shape, dtype).view(FakeBuffer)
        buf.device_address = 0x1000_0000 + 0x100_0000 * len(self.memory)
        self.memory[buf.device_address] = buf
        return buf

    def started(self, role):
        self.order.append(role)
        if role == "in":
            assert self.order[-2:] == ["out", "in"], "output DMA must be started first"
            n = self.idma0.regs[backends.REPS]
            assert self.odma0.regs[backends.REPS] == n
            src = self.memory[self.idma0.regs[backends.ADDR]]
            dst = self.memory[self.odma0.regs[backends.ADDR]]
            assert src.synced, "input buffer not flushed to the device"
            dst[:n] = self.sim.run(np.asarray(src[:n]))[0]
            self.odma0.regs[backends.AP_CTRL] = backends.AP_DONE | backends.AP_IDLE


class FakeBuffer(np.ndarray):
    synced = False

    def sync_to_device(self):
        self.synced = True

    def sync_from_device(self):
        pass


@pytest.mark.verilator
def test_pynq_backend_drives_finn_iodmas(dep, fmnist_test, monkeypatch, tmp_path):
    """The board path on a fake pynq (FINN's IODMA protocol over the simulator): the driver
    must flush, start the output DMA first, wait for done and read back exact scores."""
    build, out, _ = dep
    sim = Accelerator(out, backend="sim", batch_size=8, verbose=False).backend
    board = FakeBoard(sim)
    fake = type(sys)("pynq")
    fake.Overlay = lambda path, download=True, device=None: board
    fake.allocate = board.allocate
    fake.Clocks = type("Clocks", (), {"fclk0_mhz": None})
    fake.Device = type("Device", (), {"devices": ["fake-zynq"]})
    monkeypatch.setitem(sys.modules, "pynq", fake)
    bit = tmp_path / "groupnet-accel.bit"
    bit.write_bytes(b"bit")
    bit.with_suffix(".hwh").write_text("hwh")
    accel = Accelerator(out, backend="auto", batch_size=8, bitfile=bit, fclk_mhz=50,
                        verbose=False)
    assert accel.backend_name == "pynq" and fake.Clocks.fclk0_mhz == 50
    images = fmnist_test[0][:6]
    np.testing.assert_array_equal(accel.execute(images), reference_outputs(build, images))
    assert accel.throughput_test()["kind"] == "measured on the board"


@pytest.mark.verilator
@pytest.mark.skipif(not BOARD_PY.exists(), reason="no board-like venv (`make board-venv`)")
def test_driver_in_board_like_venv(dep):
    """As on a PYNQ image: Python 3.10, numpy<2, pynq without a device, no torch/onnx/finn."""
    _, out, _ = dep
    probe = subprocess.run([str(BOARD_PY), "-c", "import numpy, pynq, importlib.util as u; "
                            "print(numpy.__version__, [m for m in ('torch', 'onnx', 'finn', "
                            "'qonnx', 'groupnet') if u.find_spec(m)])"],
                           capture_output=True, text=True, check=True, cwd="/")
    version, present = probe.stdout.split(" ", 1)
    assert version.startswith("1.") and present.strip() == "[]"
    run = subprocess.run([str(BOARD_PY), str(out / "driver.py"), "--exec_mode", "validate",
                          "--batchsize", "8", "--json"], capture_output=True, text=True, cwd="/")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["backend"] == "sim" and result["bit_exact"] and result["n"] == 24
    assert "backend 'sim'" in run.stderr and "no device" in run.stderr
    bad = subprocess.run([str(BOARD_PY), str(out / "driver.py"), "--backend", "pynq"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "no bitfile" in bad.stderr


def test_cli_deploy_contract(dep, tmp_path):
    build, _, _ = dep
    from groupnet.cli import main
    out = tmp_path / "d"
    cmd = ["deploy", str(build), "-o", str(out), "-n", "5", "--json"]
    assert main(cmd) == 0
    assert (out / "validation" / "labels.npy").is_file()
    assert main(cmd) == 2                                       # no silent overwrite
    assert main(cmd + ["--force"]) == 0


@pytest.mark.verilator
def test_driver_cli_execute_and_throughput(dep, fmnist_test, tmp_path, capsys):
    from groupnet.hw.driver.groupnet_driver.cli import main
    build, out, _ = dep
    np.save(tmp_path / "x.npy", fmnist_test[0][:9])
    args = ["--dir", str(out), "--backend", "sim", "--batchsize", "4"]
    assert main(args + ["--exec_mode", "execute", "--inputfile", str(tmp_path / "x.npy"),
                        "--outputfile", str(tmp_path / "y.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"),
                                  reference_outputs(build, fmnist_test[0][:9]))
    assert main(args + ["--exec_mode", "throughput_test"]) == 0
    assert "images/s" in capsys.readouterr().out
    assert main(args + ["--exec_mode", "execute"]) == 1
    assert "needs --inputfile" in capsys.readouterr().err
