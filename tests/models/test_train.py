import json

import pytest

from groupnet.models.checkpoint import load_checkpoint
from groupnet.models.train import TrainConfig, TrainError, train

TINY = dict(train_limit=1024, test_limit=500, batch_size=64, lr=2e-2)


def test_train_writes_checkpoints_and_metrics(tmp_path):
    cfg = TrainConfig("test_groupnet_cnv", epochs=2, **TINY)
    metrics = train(cfg, tmp_path, progress=False)
    assert (tmp_path / "last.pt").exists() and (tmp_path / "test_groupnet_cnv.pt").exists()
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test_images"] == 500 and len(saved["history"]) == 2
    assert saved["test_accuracy"] == metrics["test_accuracy"]
    # learns something real from 2 x 1024 images: well above chance (10%)
    assert metrics["test_accuracy"] > 0.25
    model, payload = load_checkpoint(tmp_path / "test_groupnet_cnv.pt")
    assert payload["metrics"]["test_accuracy"] == metrics["test_accuracy"]


def test_seeded_runs_are_reproducible(tmp_path):
    cfg = TrainConfig("test_bnn_cnv", epochs=1, **TINY)
    a = train(cfg, tmp_path / "a", progress=False)
    b = train(cfg, tmp_path / "b", progress=False)
    assert a["history"][0]["loss"] == b["history"][0]["loss"]
    assert a["test_accuracy"] == b["test_accuracy"]


def test_resume_equals_uninterrupted(tmp_path):
    full = train(TrainConfig("test_bnn_cnv", epochs=2, **TINY), tmp_path / "full",
                 progress=False)
    # resume from a run that stopped after one epoch
    one = train(TrainConfig("test_bnn_cnv", epochs=2, **TINY), tmp_path / "cut",
                progress=False, stop_after=1)
    assert len(one["history"]) == 1 and one["stopped_early"]
    assert not (tmp_path / "cut" / "test_bnn_cnv.pt").exists()
    resumed = train(TrainConfig("test_bnn_cnv", epochs=2, **TINY), tmp_path / "cut",
                    resume=True, progress=False)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]
    assert resumed["test_accuracy"] == full["test_accuracy"]


def test_existing_run_is_not_overwritten(tmp_path):
    cfg = TrainConfig("test_bnn_cnv", epochs=1, **TINY)
    train(cfg, tmp_path, progress=False)
    with pytest.raises(TrainError, match="--resume"):
        train(cfg, tmp_path, progress=False)
    train(cfg, tmp_path, force=True, progress=False)


def test_resume_with_other_settings_is_refused(tmp_path):
    train(TrainConfig("test_bnn_cnv", epochs=1, **TINY), tmp_path, progress=False)
    with pytest.raises(TrainError, match="lr"):
        train(TrainConfig("test_bnn_cnv", epochs=1, **{**TINY, "lr": 0.1}), tmp_path,
              resume=True, progress=False)


def test_two_stage_schedule(tmp_path):
    cfg = TrainConfig("test_groupnet_cnv", epochs=2, relaxed_epochs=1, **TINY)
    metrics = train(cfg, tmp_path, progress=False)
    assert [h["relaxed"] for h in metrics["history"]] == [True, False]
    with pytest.raises(TrainError, match="relaxed_epochs"):
        train(TrainConfig("test_bnn_cnv", epochs=1, relaxed_epochs=2, **TINY),
              tmp_path / "x", progress=False)
