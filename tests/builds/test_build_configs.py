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
    from groupnet.flow import build_model
    path = ROOT / "builds" / "pynq-z2" / "groupnet_cnv_s_k4" / "build.yaml"
    cfg = BuildConfig.from_yaml(path, out=str(tmp_path / "b"), to_step="estimates")
    # the config points at a checkpoint: exported, then checked against PyTorch too
    status = build_model(cfg, images=fmnist_test[0][:10], progress=False)
    assert status["state"] == "complete"
    ver = json.loads((tmp_path / "b" / "report" / "verification.json").read_text())
    assert ver["pytorch"]["bit_exact"] and all(v["bit_exact"] for v in ver.values())
    est = json.loads((tmp_path / "b" / "report" / "estimates.json").read_text())
    assert est["utilization"]["lut"] <= 0.7


@pytest.mark.slow
def test_committed_folding_is_what_the_command_writes(tmp_path):
    """builds/*/folding.json come from builds/update_foldings.py, not from hand edits."""
    from groupnet.flow import derive_folding
    folder = ROOT / "builds" / "pynq-z2" / "groupnet_cnv_s_k2"
    committed = json.loads((folder / "folding.json").read_text())
    assert derive_folding(folder / "build.yaml", tmp_path) == committed
