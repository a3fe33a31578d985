"""Publishing into the zoo (``groupnet zoo add``): a finished run's checkpoint becomes an
index entry of a (temporary) zoo, with its metrics beside it, relative paths only, teacher
and parent as index names; an existing entry is replaced only with --force."""

import hashlib
import json
from pathlib import Path

import pytest

from groupnet.models.zoo_index import ZooError
from groupnet.models.zoo_publish import publish
from tests.groupnet.test_paths import MACHINE


def _run(folder: Path, seed: int = 0, teacher: Path | None = None, init: Path | None = None,
         acc: float = 0.5, swa: dict | None = None) -> Path:
    """A finished run folder as `groupnet train` leaves it: VARIANT.pt + metrics.json."""
    from groupnet.models import create_model
    from groupnet.models.checkpoint import save_checkpoint
    model = create_model("test_bnn_cnv")
    folder.mkdir(parents=True)
    ckpt = save_checkpoint(folder / "test_bnn_cnv.pt", model, {"test_accuracy": acc})
    tc = {"seed": seed, "epochs": 2, "lr": 3e-3, "teacher": teacher and str(teacher),
          "init": init and str(init), "swa_epochs": swa["epochs"] if swa else 0}
    metrics = {"variant": "test_bnn_cnv", "model_config": dict(model.config),
               "train_config": tc, "test_accuracy": acc, "test_images": 100,
               "history": [{"epoch": 1}, {"epoch": 2}], "train_seconds": 60.0,
               "stopped_early": False, "device": "cpu", "torch_threads": 1}
    if init:
        metrics["init"] = {"checkpoint": str(init), "epochs": 2}
    if swa:
        metrics["swa"] = swa
        save_checkpoint(folder / "test_bnn_cnv_last.pt", model,
                        {"test_accuracy": swa["last_weights_test_accuracy"],
                         "swa_last_weights": True})
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return ckpt


def _machine_paths(zoo: Path, tmp_path: Path) -> list[str]:
    bad = []
    for f in zoo.iterdir():
        data = f.read_bytes()
        if str(tmp_path).encode() in data or MACHINE.search(data):
            bad.append(f.name)
    return bad


def test_add_publishes_a_run_with_its_metrics_and_index_entry(tmp_path):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    teacher = _run(tmp_path / "runs" / "teacher", acc=0.6)
    e = publish(teacher, "test_bnn_cnv.s0", zoo)
    assert e["file"] == "test_bnn_cnv.s0.pt" and e["config"] == "test_bnn_cnv"
    assert e["sha256"] == hashlib.sha256((zoo / e["file"]).read_bytes()).hexdigest()
    assert e["aliases"] == [] and e["metrics"]["test_accuracy"] == 0.6
    assert json.loads((zoo / "index.json").read_text()) == [e]
    # a student distilled from the teacher's original run checkpoint (an absolute path):
    # its recipe names the zoo copy by index name, its records hold no machine path
    student = _run(tmp_path / "runs" / "student", seed=1, teacher=teacher.resolve())
    s = publish(student, "test_bnn_cnv.kd_s1", zoo)
    assert s["recipe"]["teacher"] == "test_bnn_cnv.s0" and s["config"] == "test_bnn_cnv.kd"
    record = json.loads((zoo / "test_bnn_cnv.kd_s1.metrics.json").read_text())
    assert record["train_config"]["teacher"] == "zoo/test_bnn_cnv.s0.pt"
    assert not _machine_paths(zoo, tmp_path)
    from groupnet.models.checkpoint import load_checkpoint
    _, payload = load_checkpoint(zoo / "test_bnn_cnv.kd_s1.pt")
    assert payload["metrics"]["test_accuracy"] == 0.5
    assert [x["name"] for x in json.loads((zoo / "index.json").read_text())] == [
        "test_bnn_cnv.kd_s1", "test_bnn_cnv.s0"]


def test_add_refuses_to_overwrite_unless_forced(tmp_path):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    first = _run(tmp_path / "a", acc=0.5)
    publish(first, "test_bnn_cnv.x_s0", zoo)
    again = _run(tmp_path / "b", acc=0.7)
    with pytest.raises(ZooError, match=r"test_bnn_cnv\.x_s0 exists .*--force"):
        publish(again, "test_bnn_cnv.x_s0", zoo)
    assert publish(again, "test_bnn_cnv.x_s0", zoo, force=True)["metrics"][
        "test_accuracy"] == 0.7
    assert sorted(p.name for p in zoo.iterdir()) == [
        "index.json", "test_bnn_cnv.x_s0.metrics.json", "test_bnn_cnv.x_s0.pt"]


@pytest.mark.parametrize("name, message", [
    ("test_bnn_cnv_kd", "not an index name VARIANT.TAG_sSEED"),
    ("test_bnn_cnv.kd_s1", "is seed 0 of test_bnn_cnv: name it test_bnn_cnv.TAG_s0"),
    ("bnn_cnv.kd_s0", "is seed 0 of test_bnn_cnv"),
])
def test_add_checks_the_name_against_the_checkpoint(tmp_path, name, message):
    ckpt = _run(tmp_path / "r")
    with pytest.raises(ZooError, match=message):
        publish(ckpt, name, tmp_path)


def test_add_needs_the_teacher_in_the_zoo_and_a_finished_run(tmp_path):
    teacher = _run(tmp_path / "t")
    student = _run(tmp_path / "s", teacher=teacher)
    with pytest.raises(ZooError, match="its teacher .* is not in .*: publish it first"):
        publish(student, "test_bnn_cnv.kd_s0", tmp_path)
    (tmp_path / "s" / "metrics.json").unlink()
    with pytest.raises(ZooError, match="no metrics beside it"):
        publish(student, "test_bnn_cnv.kd_s0", tmp_path)


def test_add_a_weight_averaged_runs_last_epoch_model(tmp_path):
    """VARIANT_last.pt beside an averaged run: its own score, the recipe a fine-tune of
    the parent, its weights the last epoch's."""
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    parent = _run(tmp_path / "p")
    publish(parent, "test_bnn_cnv.s0", zoo)
    swa = {"epochs": 2, "lr": 1e-4, "snapshots": 2, "last_weights_test_accuracy": 0.55,
           "bn_images": 100, "bn_seconds": 1.0}
    _run(tmp_path / "ft", init=parent, swa=swa)
    e = publish(tmp_path / "ft" / "test_bnn_cnv_last.pt", "test_bnn_cnv.swa2_last_s0", zoo)
    assert e["metrics"]["test_accuracy"] == 0.55
    assert e["recipe"]["parent"] == "test_bnn_cnv.s0"
    assert e["recipe"]["weights"] == "last epoch" and e["recipe"]["total_epochs"] == 4
    avg = publish(tmp_path / "ft" / "test_bnn_cnv.pt", "test_bnn_cnv.swa2_s0", zoo)
    assert avg["recipe"]["weights"] == "weight average" and avg["metrics"][
        "test_accuracy"] == 0.5


def test_zoo_add_on_the_command_line(tmp_path, capsys):
    from groupnet.cli import main
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    ckpt = _run(tmp_path / "r")
    args = ["zoo", "add", str(ckpt), "--name", "test_bnn_cnv.s0", "-o", str(zoo)]
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "test_bnn_cnv.s0"
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pass --force" in err
    assert main([*args, "--force"]) == 0 and "index.json updated" in capsys.readouterr().out
    assert main(["zoo", "add", str(ckpt)]) == 2
