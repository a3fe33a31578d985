"""One RTL module alone on an ECP5 (``groupnet.hw.fmax``, ``benchmarks/rtl_fmax.py``): the
test top around it, its random memories, the xc7 counts, fmax and critical path."""

import shutil

import pytest

from groupnet.hw import fmax
from groupnet.hw.rtl.layers import RTL_DIR


def test_bench_top_wires_the_module_with_its_parameters():
    v = fmax.bench_top("pool_max", {"PE": 8, "BITS": 1, "K2": 4}, 8, 8, 1)
    assert v.startswith("module bench_top (") and v.rstrip().endswith("endmodule")
    assert "pool_max #(.PE(8), .BITS(1), .K2(4)) dut (.clk(clk), .rst_n(rst_r)" in v
    assert ".in_tdata(sr[0 +: 8])" in v and "reg [7:0] sr;" in v
    two = fmax.bench_top("elementwise_add", {"PE": 4}, 8, 12, 1)   # two input streams
    assert ".a_tdata(sr[0 +: 8])" in two and ".b_tdata(sr[8 +: 8])" in two
    dup = fmax.bench_top("duplicate_streams", {"WIDTH": 36, "N": 2}, 36, 36, 2)
    assert "wire [71:0] od;" in dup and ".out_tready({2{r_r}})" in dup
    finn = fmax.bench_top("ConvolutionInputGenerator_0", {}, 8, 72, 1, finn=True)
    assert "ConvolutionInputGenerator_0  dut (.ap_clk(clk), .ap_rst_n(rst_r)" in finn
    assert ".in0_V_TDATA(sr[0 +: 8])" in finn and ".out0_V_TVALID(ov)" in finn
    assert '.THRES_FILE("t.hex")' in fmax.bench_top("thresholding_stream",
                                                     {"THRES_FILE": "t.hex"}, 4, 4, 1)


def test_random_memories_are_written_and_named(tmp_path):
    module, params, widths = fmax.random_mvau(tmp_path, 27, 64, 9, 8, 8, False, 1, 1)
    assert module == "mvau_stream" and widths == (72, 8, 1)
    files = [v for v in params.values() if isinstance(v, str)]
    assert files and all((tmp_path / f).is_file() for f in files)
    p = fmax.random_thresholds(tmp_path, {"C": 64, "PE": 4, "IN_BITS": 4, "N_THRES": 15})
    assert p["THRES_FILE"] == "thresholds.hex" and p["C"] == 64
    assert len((tmp_path / "thresholds.hex").read_text().split()) == 64 // 4


def test_critical_path_from_nextpnr_report():
    step = lambda t, d, a, b: {"type": t, "delay": d, "from": {"cell": a},  # noqa: E731
                               "to": {"cell": b}}
    report = {"critical_paths": [{"path": [step("clk-to-q", 0.5249999761581421, "a", "b"),
                                           step("routing", 1.004, "b", "c"),
                                           step("logic", 0.333, "c", "d"),
                                           step("routing", 2.0, "d", "e")]}]}
    assert fmax.critical_path(report) == {"from": "a", "to": "e",
                                          "clk_to_q_ns": 0.5249999761581421,
                                          "logic_ns": 0.33, "routing_ns": 3.0}
    assert fmax.critical_path({}) == []


@pytest.mark.yosys
def test_xc7_cells_and_a_failure_is_a_row_not_a_crash(tmp_path):
    shutil.copy(RTL_DIR / "pool_max.v", tmp_path)
    cells = fmax.xc7_cells("pool_max", {"PE": 2, "BITS": 1, "K2": 4}, tmp_path)
    assert cells["LUT"] > 0 and cells["FF"] > 0
    (tmp_path / "pool_max.v").write_text("module pool_max(; endmodule\n")
    assert "error" in fmax.xc7_cells("pool_max", {"PE": 2}, tmp_path)


@pytest.mark.slow
@pytest.mark.yosys
def test_a_module_alone_gets_fmax_cells_and_its_critical_path(tmp_path):
    shutil.copy(RTL_DIR / "pool_max.v", tmp_path)
    res = fmax.place_alone({"top.v": fmax.bench_top("pool_max", {"PE": 2, "BITS": 1,
                                                                 "K2": 4}, 2, 2, 1)},
                           "read_verilog -defer -sv pool_max.v", tmp_path)
    assert res["fmax_mhz"] > 50 and res["FF"] > 0 and res["LUT4"] > 0
    assert res["critical"]["routing_ns"] > 0 and res["yosys_s"] > 0
