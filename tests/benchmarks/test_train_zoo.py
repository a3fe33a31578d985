"""The zoo script's bookkeeping: run names, finished runs, resume points carried between
machines (``--park``). Training itself is tested in tests/models/test_train.py."""

import argparse
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import train_zoo  # noqa: E402


def test_run_spec_names_round_trip():
    spec = train_zoo.RunSpec.parse("groupnet_cnv_h_k4@1+agg_bits=3+kd")
    assert (spec.variant, spec.seed, spec.options, spec.kd) == (
        "groupnet_cnv_h_k4", 1, {"agg_bits": 3}, True)
    assert spec.name == "groupnet_cnv_h_k4_agg3_kd_seed1"
    assert train_zoo.RunSpec.parse(str(spec)) == spec
    with pytest.raises(SystemExit, match="not OPTION=VALUE"):
        train_zoo.RunSpec.parse("bnn_cnv+oops")


@pytest.fixture
def places(tmp_path, monkeypatch):
    monkeypatch.setattr(train_zoo, "CARRY", tmp_path / "carry")
    monkeypatch.setattr(train_zoo, "ZOO", tmp_path / "zoo")
    (tmp_path / "zoo").mkdir()
    return tmp_path


def _args(out: Path) -> argparse.Namespace:
    return argparse.Namespace(table="t", out=str(out))


def test_park_carries_unfinished_runs_to_a_new_machine(places):
    old = places / "old_runs"
    (old / "a").mkdir(parents=True)
    torch.save({"history": [{"loss": 1.0}, {"loss": 0.5}]}, old / "a" / "last.pt")
    (old / "done").mkdir()
    torch.save({"history": []}, old / "done" / "last.pt")
    (old / "done" / "metrics.json").write_text("{}")
    train_zoo.park(_args(old))
    assert (places / "carry" / "t" / "a" / "last.pt").is_file()
    assert not (places / "carry" / "t" / "done").exists()

    new = places / "new_runs"
    specs = [train_zoo.RunSpec.parse("a"), train_zoo.RunSpec.parse("done")]
    train_zoo.unpark(specs, _args(new))
    assert (new / "a" / "last.pt").read_bytes() == (old / "a" / "last.pt").read_bytes()
    assert not (new / "done").exists()

    # a run's own, newer checkpoint is never overwritten by the carried one
    torch.save({"history": [{}] * 3}, new / "a" / "last.pt")
    mine = (new / "a" / "last.pt").read_bytes()
    train_zoo.unpark(specs, _args(new))
    assert (new / "a" / "last.pt").read_bytes() == mine

    # once finished (here: its zoo copy exists), the carried point is dropped
    (places / "zoo" / "a.metrics.json").write_text("{}")
    train_zoo.park(_args(new))
    assert not (places / "carry" / "t" / "a").exists()


def test_a_zoo_copy_counts_as_finished(places):
    assert not train_zoo._finished("x", _args(places / "runs"))
    (places / "zoo" / "x.metrics.json").write_text("{}")
    assert train_zoo._finished("x", _args(places / "runs"))


def test_a_zoo_model_of_another_recipe_is_neither_taken_nor_overwritten(places):
    import json
    record = {"train_config": {"dataset": "fashion-mnist-boxes", "epochs": 12}}
    (places / "zoo" / "bnn_detnet.metrics.json").write_text(json.dumps(record))
    args = argparse.Namespace(table="t", out=str(places / "runs"),
                              dataset="fashion-mnist-boxes", epochs=36)
    with pytest.raises(SystemExit, match="12 epochs.*asks.*36.*--suffix"):
        train_zoo._finished("bnn_detnet", args, check=True)
    args.epochs = 12
    assert train_zoo._finished("bnn_detnet", args, check=True)
    spec = train_zoo.RunSpec.parse("bnn_detnet@1+kd", "_e36")
    assert spec.name == "bnn_detnet_kd_seed1_e36"
    assert train_zoo.RunSpec.parse(str(spec), "_e36") == spec


def test_a_table_keeps_its_rows_when_one_more_run_is_added(places, monkeypatch):
    """Training one more run rewrites the results table with every row it had before."""
    import json
    monkeypatch.setattr(train_zoo, "RESULTS", places / "results")
    (places / "results").mkdir()
    old_row = {"name": "old", "test_accuracy": 0.5}
    (places / "results" / "t.json").write_text(json.dumps({"rows": [old_row]}))
    metrics = {"variant": "bnn_cnv", "model_config": {"width": 1.0},
               "train_config": {"seed": 0}, "history": [{}] * 2, "test_accuracy": 0.9,
               "test_images": 10000, "train_seconds": 60.0, "device": "cpu",
               "torch_threads": 2}
    (places / "runs" / "new").mkdir(parents=True)
    (places / "runs" / "new" / "metrics.json").write_text(json.dumps(metrics))
    rows = train_zoo.collect(places / "runs", ["new"], "t")
    assert [r["name"] for r in rows] == ["old", "new"]
    assert rows[0] == old_row and rows[1]["test_accuracy"] == 0.9
    # a row whose run (or zoo copy) is there again is refreshed from it, not duplicated
    (places / "zoo" / "old.metrics.json").write_text(json.dumps(metrics))
    rows = train_zoo.collect(places / "runs", ["new"], "t")
    assert [r["name"] for r in rows] == ["old", "new"] and rows[0]["epochs"] == 2


def test_a_fine_tuned_run_counts_the_whole_recipe(places, monkeypatch):
    """A run fine-tuned with --init: its row counts the starting model's epochs and train
    time (found in models/zoo/ also when the recorded path is another machine's), and the
    table says what it started from."""
    import json
    monkeypatch.setattr(train_zoo, "RESULTS", places / "results")
    (places / "results").mkdir()
    base = {"variant": "bnn_cnv", "model_config": {"width": 1.0},
            "train_config": {"seed": 0, "lr": 3e-3}, "history": [{}] * 16,
            "test_accuracy": 0.9, "test_images": 10000, "train_seconds": 600.0,
            "train_cpu_seconds": 1200.0, "device": "cpu", "torch_threads": 2}
    (places / "zoo" / "base.metrics.json").write_text(json.dumps(base))
    tuned = {**base, "train_config": {"seed": 0, "lr": 1e-3}, "history": [{}] * 8,
             "test_accuracy": 0.92, "train_seconds": 300.0, "train_cpu_seconds": 300.0,
             "init": {"checkpoint": "/elsewhere/models/zoo/base.pt", "epochs": 16}}
    (places / "runs" / "base_ft").mkdir(parents=True)
    (places / "runs" / "base_ft" / "metrics.json").write_text(json.dumps(tuned))
    rows = train_zoo.collect(places / "runs", ["base_ft"], "t")
    row = next(r for r in rows if r["name"] == "base_ft")
    assert row["epochs"] == 24 and row["init"]["name"] == "base"
    assert row["train_minutes"] == 15 and row["train_cpu_minutes"] == 25
    train_zoo.write_table("t", rows, {})
    md = (places / "results" / "t.md").read_text()
    assert "| 16+8 |" in md and "fine-tuned (`--init`) from `base` (90.00%, 16 epochs) " \
        "for 8 more epochs, a new one-cycle schedule with peak LR 0.001" in md
    # fine-tuned again from the fine-tuned model (its run folder): every stage is counted
    again = {**tuned, "history": [{}] * 4, "test_accuracy": 0.93, "train_seconds": 120.0,
             "train_cpu_seconds": 240.0,
             "init": {"checkpoint": str(places / "runs" / "base_ft" / "bnn_cnv.pt")}}
    (places / "runs" / "base_ft2").mkdir()
    (places / "runs" / "base_ft2" / "metrics.json").write_text(json.dumps(again))
    rows = train_zoo.collect(places / "runs", ["base_ft", "base_ft2"], "t")
    row = next(r for r in rows if r["name"] == "base_ft2")
    assert row["epochs"] == 28 and row["init"]["name"] == "base_ft"
    assert row["init"]["stages"] == [16, 8] and row["init"]["test_accuracy"] == 0.92
    assert row["train_minutes"] == 17 and row["train_cpu_minutes"] == 29
    train_zoo.write_table("t", rows, {})
    md = (places / "results" / "t.md").read_text()
    assert "| 16+8+4 |" in md and "fine-tuned (`--init`) from `base_ft` (92.00%, 16+8 " \
        "epochs) for 4 more epochs" in md
    # fine-tuned with weight averaging over all its epochs: the note says so
    swa = {"epochs": 4, "lr": 1e-4, "snapshots": 4, "bn_images": 60000,
           "last_weights_test_accuracy": 0.925, "bn_seconds": 9.0}
    (places / "runs" / "base_ft2" / "metrics.json").write_text(json.dumps({**again,
                                                                          "swa": swa}))
    rows = train_zoo.collect(places / "runs", ["base_ft", "base_ft2"], "t")
    train_zoo.write_table("t", rows, {})
    md = (places / "results" / "t.md").read_text()
    assert "for 4 more epochs, stochastic weight averaging: constant LR 0.0001, the model " \
        "the mean of the weights at the ends of 4 epochs with batch-norm statistics " \
        "recomputed on the 60,000 training images (the last epoch's own weights: 92.50%)" in md
    assert "with peak LR 0.001" in md      # (base_ft's note is unchanged)
    # a starting model whose metrics are nowhere is one clear line
    (places / "zoo" / "base.metrics.json").unlink()
    with pytest.raises(SystemExit, match="base.pt: the fine-tuned run's starting model "
                                         "has no metrics"):
        train_zoo.collect(places / "runs", ["base_ft"], "t")


def test_a_weight_averaged_runs_last_epoch_model_is_a_row_only_when_asked(places,
                                                                          monkeypatch):
    """--keep-last: the last-epoch model a --swa-epochs run keeps beside its average is a
    row of its own, with its own score and a note that says what it is; never unasked."""
    import json
    monkeypatch.setattr(train_zoo, "RESULTS", places / "results")
    (places / "results").mkdir()
    m = {"variant": "bnn_cnv", "model_config": {"width": 1.0},
         "train_config": {"seed": 1, "lr": 1e-4}, "history": [{}, {"test_accuracy": 0.91}],
         "test_accuracy": 0.91, "test_images": 10000, "train_seconds": 60.0,
         "device": "cpu", "torch_threads": 2,
         "swa": {"epochs": 2, "lr": 1e-4, "snapshots": 2, "bn_images": 60000,
                 "bn_seconds": 5.0, "last_weights_test_accuracy": 0.925}}
    run = places / "runs" / "a_seed1_swa"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(m))
    (run / "bnn_cnv_last.pt").write_bytes(b"")
    assert [r["name"] for r in train_zoo.collect(places / "runs", ["a_seed1_swa"])] == [
        "a_seed1_swa"]
    rows = train_zoo.collect(places / "runs", ["a_seed1_swa"], "t", keep_last=True)
    assert [r["name"] for r in rows] == ["a_seed1_swa", "a_seed1_swa_last"]
    assert [r["test_accuracy"] for r in rows] == [0.91, 0.925]
    assert rows[1]["seed"] == 1 and rows[1]["swa"] == {
        "model": "last epoch", "epochs": 2, "lr": 1e-4, "snapshots": 2,
        "averaged_test_accuracy": 0.91}
    assert train_zoo.last_weights_metrics(m)["history"][-1]["test_accuracy"] == 0.925
    note = train_zoo.schedule_note(rows[1])
    assert note == ("constant LR 0.0001, the last epoch's own weights (the same run's "
                    "weight average over 2 epochs: 91.00%)")
    assert "(the last epoch's own weights: 92.50%)" in train_zoo.schedule_note(rows[0])
    # a summary row of two seeds names each seed's other model
    two = {**rows[1], "seeds": [0, 1], "swa_seeds": [
        {**rows[1]["swa"], "averaged_test_accuracy": 0.9}, rows[1]["swa"]]}
    assert train_zoo.schedule_note(two).endswith(
        "weight average over 2 epochs: seeds 0, 1: 90.00%, 91.00%)")
    # once in the table, the row stays (refreshed) without being asked again
    train_zoo.write_table("t", rows, {})
    rows = train_zoo.collect(places / "runs", [], "t")
    assert [r["name"] for r in rows] == ["a_seed1_swa", "a_seed1_swa_last"]
    # the summary finds its checkpoint in the averaged run's folder
    import zoo_table
    assert zoo_table._files(rows[1], places / "runs") == (run / "bnn_cnv_last.pt",
                                                         run / "metrics.json")

    # --zoo: the last-epoch model is copied (compact) with its own metrics
    from groupnet.models import create_model
    from groupnet.models.checkpoint import load_checkpoint, save_checkpoint
    save_checkpoint(run / "bnn_cnv_last.pt", create_model("test_bnn_cnv"))
    save_checkpoint(run / "bnn_cnv.pt", create_model("test_bnn_cnv"))
    monkeypatch.setattr(sys, "argv", ["train_zoo.py", "--table", "t", "--out",
                                      str(places / "runs"), "--collect", "--zoo"])
    assert train_zoo.main() == 0
    record = json.loads((places / "zoo" / "a_seed1_swa_last.metrics.json").read_text())
    assert record["test_accuracy"] == 0.925 and record["swa"]["model"] == "last epoch"
    assert json.loads((places / "zoo" / "a_seed1_swa.metrics.json").read_text()) == m
    load_checkpoint(places / "zoo" / "a_seed1_swa_last.pt")
