"""Every committed build config is valid: model, board and folding exist and fit."""

import json
from pathlib import Path

import pytest

from groupnet.hw.boards import get_board
from groupnet.hw.build import BuildConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "builds").glob("*/*/build.yaml"))


def test_there_are_build_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=[p.parent.relative_to(ROOT / "builds").as_posix()
                                               for p in CONFIGS])
def test_config_is_complete(path):
    cfg = BuildConfig.from_yaml(path)
    assert Path(cfg.model).is_file(), cfg.model
    board = get_board(cfg.board)
    assert path.parent.parent.name == board.name            # builds/<board>/<variant>/
    assert Path(cfg.model).stem == path.parent.name         # named after the variant
    assert Path(cfg.out) == path.parent / "out"
    if cfg.folding:
        folding = json.loads(Path(cfg.folding).read_text())
        assert any(k.startswith("MVAU") for k in folding)


@pytest.mark.slow
def test_committed_groupnet_build_runs_bit_exact(tmp_path, fmnist_test):
    from groupnet.hw.build import run_build
    path = ROOT / "builds" / "pynq-z2" / "groupnet_cnv_s_k4" / "build.yaml"
    cfg = BuildConfig.from_yaml(path, out=str(tmp_path / "b"), to_step="estimates")
    # the committed config points at a checkpoint: export it the way the CLI does
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.export import export_qonnx
    model, payload = load_checkpoint(cfg.model)
    cfg.model = str(export_qonnx(model, tmp_path / "m.onnx", metrics=payload["metrics"]))
    cfg.verify = True
    status = run_build(cfg, fmnist_test[0][:10], progress=False)
    assert status["state"] == "complete"
    ver = json.loads((tmp_path / "b" / "report" / "verification.json").read_text())
    assert all(v["bit_exact"] for v in ver.values())
    est = json.loads((tmp_path / "b" / "report" / "estimates.json").read_text())
    assert est["utilization"]["lut"] <= 0.7
