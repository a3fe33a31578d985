"""``groupnet.flow``'s library calls: a model's estimates on a board, the smallest board it
fits (what explore, the zoo tables and the benchmarks use)."""

import pytest
import torch

from groupnet.flow import estimate, smallest_board
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
