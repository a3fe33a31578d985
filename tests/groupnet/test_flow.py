"""``groupnet.flow``'s library calls: a model's estimates on a board, the smallest board it
fits (what explore, the zoo tables and the benchmarks use) and its results row, a zoo
model built for the benchmarks."""

import pytest
import torch

from groupnet.flow import (build_zoo_model, estimate, smallest_bitstream, smallest_board,
                           smallest_board_row)
from groupnet.models import create_model
from groupnet.models.export import export_qonnx


@pytest.fixture(scope="module")
def onnx(tmp_path_factory):
    torch.manual_seed(0)
    return export_qonnx(create_model("test_bnn_cnv").eval(),
                        tmp_path_factory.mktemp("m") / "bnn.onnx")


def test_estimate_or_why_it_does_not_fit(onnx, tmp_path):
    est = estimate(onnx, "pynq-z2", tmp_path / "a")
    assert est["fits"] and est["board"] == "pynq-z2" and est["fps"] > 0 and est["lut"] > 0
    assert est["build"] == str(tmp_path / "a") and est["layers"]
    tiny = estimate(onnx, "pynq-z2", tmp_path / "b", budget=1e-4)
    assert tiny == {"board": "pynq-z2", "fits": False, "error": tiny["error"]}
    assert "over 0% of pynq-z2" in tiny["error"]


def test_smallest_board_goes_up_the_ladder(onnx, tmp_path):
    first = smallest_board(onnx, tmp_path, ("pynq-z2", "zcu104"))
    assert first["board"] == "pynq-z2" and first["not_fitting"] == []
    none = smallest_board(onnx, tmp_path, ("pynq-z2", "zcu104"), budget=1e-5)
    assert none["board"] is None and len(none["not_fitting"]) == 2
    assert none["not_fitting"][0].startswith("pynq-z2: ")


def test_smallest_board_row_counts_the_thresholds_stored(onnx, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper

    from groupnet.hw.estimates import threshold_count
    row = smallest_board_row(onnx, tmp_path, ("pynq-z2", "zcu104"))
    assert row["board"] == "pynq-z2" and row["not_fitting"] == []
    assert set(row) == {"board", "fps", "lut", "thresholds", "bram18", "dsp", "lut_pct",
                        "bottleneck", "not_fitting"}
    model = ModelWrapper(str(tmp_path / "pynq-z2" / "dataflow.onnx"))
    assert row["thresholds"] == threshold_count(model) > 0
    none = smallest_board_row(onnx, tmp_path, ("pynq-z2",), budget=1e-5)
    assert none == {"board": None, "not_fitting": none["not_fitting"]}
    assert none["not_fitting"][0].startswith("pynq-z2: ")


def test_build_zoo_model_untrained_when_asked(tmp_path):
    from groupnet.models.checkpoint import CheckpointError
    build, payload = build_zoo_model("test_bnn_cnv", "pynq-z2", tmp_path, untrained_ok=True)
    assert payload == {"untrained": True} and build.root == tmp_path / "test_bnn_cnv"
    assert build.estimates()["fps"] > 0
    with pytest.raises(CheckpointError, match="no zoo checkpoint for 'test_bnn_cnv'"):
        build_zoo_model("test_bnn_cnv", "pynq-z2", tmp_path / "b")


def test_smallest_bitstream_moves_up_when_synthesis_finds_it_too_large(onnx, tmp_path,
                                                                        monkeypatch):
    from groupnet.hw import bitstream as bs
    tried = []

    def fake(build, clock_mhz, images, keep_failing, progress):
        tried.append(build.board.name)
        if len(tried) == 1:
            raise bs.BitstreamError("too large for the part")
        return {"board": build.board.name, "clock_mhz": clock_mhz}
    monkeypatch.setattr(bs, "bitstream", fake)
    heard = []
    rep = smallest_bitstream(onnx, tmp_path, ("pynq-z2", "zcu104"), 50.0, None,
                             lambda board, err: heard.append((board, str(err))))
    assert tried == ["pynq-z2", "zcu104"] and heard == [("pynq-z2", "too large for the part")]
    assert rep == {"board": "zcu104", "clock_mhz": 50.0, "build": str(tmp_path / "zcu104")}
    tried.clear()
    monkeypatch.setattr(bs, "bitstream", lambda *a, **k: (_ for _ in ()).throw(
        bs.BitstreamError("no")))
    assert smallest_bitstream(onnx, tmp_path / "b", ("zcu104",), 50.0, None) == {
        "board": None, "note": "fits no board after synthesis"}


@pytest.mark.slow
@pytest.mark.verilator
def test_estimate_and_simulate_sizes_and_simulates(onnx, tmp_path):
    from groupnet.flow import estimate_and_simulate, test_images
    images, _ = test_images(onnx, 8)
    hw = estimate_and_simulate(onnx, "pynq-z2", tmp_path / "b", images, frames=5)
    assert hw["build"].root == tmp_path / "b" and hw["estimates"]["fps"] > 0
    assert hw["sizing"]["total_fifo_entries"] > 0 and (tmp_path / "b" / "fifo_depths.json").is_file()
    assert hw["sim"]["bit_exact"] and hw["sim"]["frames"] == 5
    assert hw["sim"]["bound_cycles_per_frame"] == hw["estimates"]["max_cycles"]
