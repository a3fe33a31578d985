"""`groupnet explore`: specs, sweeps on Dask (in-process and real worker processes), resume,
failing points, a worker killed mid-sweep, Optuna search, the Pareto front."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from groupnet.explore import SpecError, load_spec, run_sweep, select_points
from groupnet.explore.pareto import dominates, front

TRAIN = {"epochs": 1, "train_limit": 256, "test_limit": 200, "val_limit": 200, "batch_size": 64,
         "eval_subset": 100}


def write_spec(folder: Path, space: list, name: str = "t", **extra) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "train": TRAIN, "space": space,
                                    "boards": ["pynq-z2"], "simulate": "none", **extra}))
    return path


def results(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "groupnet.cli", "explore", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"}, **kw)


@pytest.mark.parametrize("spec, message", [
    ({"space": [{"variant": "test_bnn_cnv"}]}, "train.epochs: missing"),
    ({"train": {"epochs": 1}, "space": [{"variant": "test_groupnet_cnv", "kk": [2]}]},
     "space[0].kk: not an option of test_groupnet_cnv"),
    ({"train": {"epochs": 1}, "space": [{"variant": "no_such_net"}]},
     "space[0].variant: unknown model 'no_such_net'"),
    ({"train": {"epochs": 1}, "space": [{"variant": "test_groupnet_cnv", "k": ["two"]}]},
     "space[0].k: 'two' is not a int"),
    ({"train": {"epochs": 1, "lr": "fast"}, "space": [{"variant": "test_bnn_cnv"}]},
     "train.lr: 'fast' is not a float"),
    ({"train": {"epochs": 1}, "space": [{"variant": "test_bnn_cnv"}], "boards": ["pynq"]},
     "boards[0]: unknown board 'pynq'"),
    ({"train": {"epochs": 1}, "space": [{"variant": "test_bnn_cnv"}], "fold": {"budget": 2}},
     "fold.budget: 2"),
    ({"train": {"epochs": 1}, "space": [{"variant": "test_bnn_cnv"}], "spaces": []},
     "spaces: unknown key"),
    ({"train": {"epochs": 1}, "space": [{"checkpoint": "/nonexistent/*.pt"}]},
     "space[0].checkpoint: no checkpoint matches"),
    ({"train": {"epochs": 1}, "space": [{"variant": "test_bnn_cnv"}],
      "search": {"trials": 0}}, "search.trials: 0"),
])
def test_bad_spec_is_one_line_naming_the_key(tmp_path, spec, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_bad_spec_on_the_command_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: {epochs: 1}\nspace: [{variant: test_groupnet_cnv, widht: [1]}]\n")
    proc = cli(str(path))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [
        f"groupnet explore: error: {path}: space[0].widht: not an option of "
        "test_groupnet_cnv (agg_bits, decomposition, k) nor a training setting"]


def test_grid_expands_and_keys_are_stable(tmp_path):
    path = write_spec(tmp_path, [{"variant": "test_bnn_cnv"},
                                 {"variant": "test_groupnet_cnv", "k": [2, 3], "agg_bits": [2, 3]},
                                 {"variant": "test_groupnet_cnv", "k": 2}])   # a duplicate
    spec = load_spec(path)
    assert len(spec.points) == 5
    assert len({p.key for p in spec.points}) == 5
    assert [p.key for p in load_spec(path).points] == [p.key for p in spec.points]
    # a setting that changes the trained model changes the key; one that does not, not
    spec2 = load_spec(write_spec(tmp_path, [{"variant": "test_bnn_cnv"}], name="u",
                                 train={**TRAIN, "seed": 1}))
    spec3 = load_spec(write_spec(tmp_path, [{"variant": "test_bnn_cnv"}], name="v",
                                 train={**TRAIN, "device": "cpu", "eval_subset": 50}))
    assert spec2.points[0].key != spec.points[0].key == spec3.points[0].key


def test_fine_tune_points_are_keyed_by_their_start_and_averaging(tmp_path):
    """A fine-tuning stage (``train.init``) and weight averaging are part of a point's key
    (the init checkpoint by content, wherever it lies); a spec without them keeps the keys
    it had; one init per sweep, as one teacher."""
    from groupnet.explore.spec import file_identity
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"weights a"), b.write_bytes(b"weights b")
    plain = load_spec(write_spec(tmp_path, [{"variant": "test_bnn_cnv"}], name="p"))
    keys = {}
    for name, extra in (("a", {"init": str(a)}), ("b", {"init": str(b)}),
                        ("swa", {"init": str(a), "swa_epochs": 2}),
                        ("swa_lr", {"init": str(a), "swa_epochs": 2, "swa_lr": 1e-3}),
                        ("swa_off_lr", {"init": str(a), "swa_lr": 1e-3})):
        spec = load_spec(write_spec(tmp_path, [{"variant": "test_bnn_cnv"}], name=name,
                                    train={**TRAIN, **extra}))
        keys[name] = spec.points[0].key
    assert len({plain.points[0].key, *keys.values()}) == 5
    assert keys["swa_off_lr"] == keys["a"]      # swa_lr without averaging decides nothing
    moved = tmp_path / "elsewhere" / "a.pt"
    moved.parent.mkdir()
    moved.write_bytes(a.read_bytes())
    spec = load_spec(write_spec(tmp_path, [{"variant": "test_bnn_cnv"}], name="m",
                                train={**TRAIN, "init": str(moved)}))
    assert spec.points[0].key == keys["a"]
    assert spec.points[0].train["init"] == file_identity(a)
    for bad, message in (({"init": str(tmp_path / "none.pt")}, "train.init: init "),
                         ({}, r"space\[0\]\.init: one init per sweep")):
        path = write_spec(tmp_path, [{"variant": "test_bnn_cnv", **({} if bad else
                                      {"init": str(a)})}], name="bad", train={**TRAIN, **bad})
        with pytest.raises(SpecError, match=message):
            load_spec(path)


def test_points_train_under_the_validation_protocol(tmp_path):
    """A point trains on the train split, checks on val and reads test once; the protocol
    is part of its key (and of reuse), and a spec that turns it off keeps the keys its
    points had before it existed."""
    from groupnet.explore.point import _recorded_train, train_point
    from groupnet.explore.spec import TRAIN_IDENTITY, digest
    new = load_spec(write_spec(tmp_path, [{"variant": "test_bnn_cnv"}], name="n"))
    old = load_spec(write_spec(tmp_path, [{"variant": "test_bnn_cnv"}], name="o",
                               train={**TRAIN, "validation": False}))
    p, q = new.points[0], old.points[0]
    assert p.train["validation"] is True
    assert set(q.train) == set(TRAIN_IDENTITY) | {"val_limit"}    # set by TRAIN: in the key
    assert q.key == digest({"variant": q.variant, "model": q.model, "train": q.train})
    assert p.key != q.key
    ckpt = train_point(new, p, tmp_path / "train")
    m = json.loads((ckpt.parent / "metrics.json").read_text())
    assert m["protocol"] == "validation" and m["val_images"] == 200    # TRAIN's val_limit
    assert m["train_images"] == 256 and m["test_images"] == 200
    assert _recorded_train(m) == p.train | {"teacher": None}


def test_front_table_says_which_split_chose_each_model():
    from groupnet.explore.pareto import table
    base = {"lut": 100, "lut_pct": 0.1, "fps_est": 10, "status": "ok", "board": "b", "k": 1,
            "width": 0.25, "agg_bits": None, "binary_macs": 1e6, "bram18": 1,
            "origin": "trained", "variant": "bnn_cnv_s"}
    rows = [{**base, "key": "a", "label": "a", "quality": 0.9, "protocol": "validation",
             "val_quality": 0.91},
            {**base, "key": "b", "label": "b", "quality": 0.8, "lut": 50}]   # older row
    text = table(rows)
    assert "| 90.00% (val 91.00%) |" in text and "| 80.00% (test checks) |" in text


def test_pareto_front():
    a = {"quality": 0.9, "lut": 100, "fps_est": 10, "status": "ok", "key": "a"}
    b = {"quality": 0.8, "lut": 200, "fps_est": 10, "status": "ok", "key": "b"}  # dominated
    c = {"quality": 0.8, "lut": 50, "fps_est": 10, "status": "ok", "key": "c"}
    d = {"quality": 0.7, "lut": 300, "fps_est": 99, "status": "ok", "key": "d"}  # fastest
    assert dominates(a, b) and not dominates(a, c) and not dominates(b, b)
    assert [r["key"] for r in front([a, b, c, d])] == ["c", "a", "d"]


def test_a_spec_without_boards_trains_only(tmp_path):
    """``boards: []``: each point is trained (as the zoo's recipes are) and recorded once,
    with no build; the front names its checkpoint (what `groupnet zoo add` takes)."""
    spec = load_spec(write_spec(tmp_path, [{"variant": "test_bnn_cnv"}], boards=[]))
    out = tmp_path / "sweep"
    rows = run_sweep(spec, out, executor="serial", progress=False)["rows"]
    assert [(r["status"], r["board"], r["origin"]) for r in rows] == [("trained", "-",
                                                                       "trained")]
    ckpt = Path(rows[0]["checkpoint"])
    assert ckpt.is_file() and (ckpt.parent / "metrics.json").is_file()
    assert not list((out / "points").glob("*/model.onnx"))       # nothing exported or built
    assert f"`{ckpt}`" in (out / "front.md").read_text()
    n = len(results(out))
    run_sweep(load_spec(spec.path), out, executor="serial", progress=False)
    assert len(results(out)) == n                                  # done: not run again


def test_only_runs_the_named_points(tmp_path):
    """``only`` (``groupnet explore --only KEY|LABEL``): just those points of the grid run,
    picked by label or key; a name that is no point of the spec is one error listing them."""
    spec = load_spec(write_spec(tmp_path, [{"variant": "test_bnn_cnv", "seed": [0, 1]}],
                                boards=[]))
    labels = [p.label for p in spec.points]
    assert labels == ["test_bnn_cnv seed=0", "test_bnn_cnv seed=1"]
    assert [p.label for p in select_points(spec, [spec.points[1].key]).points] == labels[1:]
    with pytest.raises(SpecError, match="no point 'test_bnn_cnv seed=2'; points: "
                                        "test_bnn_cnv seed=0 "):
        select_points(spec, ["test_bnn_cnv seed=2"])
    rows = run_sweep(spec, tmp_path / "sweep", executor="serial", progress=False,
                     only=["test_bnn_cnv seed=1"])["rows"]
    assert [r["label"] for r in rows] == ["test_bnn_cnv seed=1"]
    assert len(results(tmp_path / "sweep")) == 1


@pytest.mark.slow
def test_sweep_in_process_with_a_failing_point_then_resume(tmp_path):
    """4 tiny points on an in-process Dask cluster; one fails (a negative learning rate)
    and is recorded with its error; running again evaluates nothing; --retry-failed only
    the failed one."""
    space = [{"variant": "test_bnn_cnv"},
             {"variant": "test_groupnet_cnv", "k": [2, 3]},
             {"variant": "test_groupnet_cnv", "k": 2, "lr": -1.0}]
    spec = load_spec(write_spec(tmp_path, space, simulate={"points": "front", "frames": 2}))
    out = tmp_path / "sweep"
    summary = run_sweep(spec, out, executor="inprocess", progress=False)
    rows = {r["label"]: r for r in summary["rows"]}
    assert len(rows) == 4
    failed = rows["test_groupnet_cnv k=2 lr=-1.0"]
    assert failed["status"] == "failed" and "learning rate" in failed["error"]
    ok = [r for r in rows.values() if r["status"] == "ok"]
    assert len(ok) == 3 and all(r["origin"] == "trained" and 0 <= r["quality"] <= 1
                                and r["lut"] > 0 and r["fps_est"] > 0 for r in ok)
    assert rows["test_groupnet_cnv k=3"]["lut"] > rows["test_groupnet_cnv k=2"]["lut"]
    # the front's points were simulated in Verilator, bit-exact
    fr = summary["front"]["pynq-z2"]
    assert fr and set(summary["simulations"]) == set(fr)
    assert all(s["bit_exact"] and s["sim_fps"] > 0 for s in summary["simulations"].values())
    assert (out / "front.md").read_text().count("| yes |") == len(fr)
    assert (out / "front.png").stat().st_size > 10_000
    n = len(results(out))

    again = run_sweep(load_spec(spec.path), out, executor="inprocess", progress=False)
    assert len(results(out)) == n and len(again["rows"]) == 4

    run_sweep(load_spec(spec.path), out, executor="serial", progress=False, retry_failed=True)
    new = results(out)[n:]
    assert [r["label"] for r in new] == ["test_groupnet_cnv k=2 lr=-1.0"]
    assert new[0]["status"] == "failed"


def test_park_keeps_trainings_for_another_machine(tmp_path, monkeypatch, capsys):
    """With ``park:``, a finished training is kept in the park folder as it finishes and a
    sweep folder on another machine takes it instead of training; ``--park`` keeps the
    resume point of an unfinished training, which a new sweep folder starts from."""
    from groupnet.cli import main
    from groupnet.explore.park import parked, restore
    monkeypatch.chdir(tmp_path)
    path = write_spec(tmp_path, [{"variant": "test_bnn_cnv"},
                                 {"variant": "test_groupnet_cnv", "k": 2}], park="park")
    spec = load_spec(path)
    done, running = spec.points
    # machine 1: the first point trains; the second stopped mid-training (its resume point)
    out = tmp_path / "m1"
    one = write_spec(tmp_path, [{"variant": "test_bnn_cnv"}], name="one", park="park")
    run_sweep(load_spec(one), out, executor="serial", progress=False)
    assert parked(spec, done, ".pt").is_file() and parked(spec, done, ".metrics.json").is_file()
    resume = out / "points" / running.key / "train" / "last.pt"
    resume.parent.mkdir(parents=True)
    resume.write_bytes(b"resume state")
    assert main(["explore", str(path), "--out", str(out), "--park", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"finished": 0, "resume": 1, "already": 1}
    assert parked(spec, running, ".last.pt").read_bytes() == b"resume state"
    # machine 2: the finished point is reused, the unfinished one resumes from the park
    fresh = tmp_path / "m2-train"
    assert restore(spec, running, fresh) and (fresh / "last.pt").read_bytes() == b"resume state"
    assert not restore(spec, running, fresh)          # its own resume point comes first
    rows = run_sweep(load_spec(one), tmp_path / "m2", executor="serial",
                     progress=False)["rows"]
    assert [r["origin"] for r in rows] == ["reused"]
    with pytest.raises(SpecError, match="park: expected a folder relative"):
        load_spec(write_spec(tmp_path, [{"variant": "test_bnn_cnv"}], park=str(tmp_path)))


@pytest.mark.slow
def test_interrupted_sweep_resumes_where_it_stopped(tmp_path):
    space = [{"variant": "test_bnn_cnv"}, {"variant": "test_groupnet_cnv", "k": [2, 3]}]
    path = write_spec(tmp_path, space)
    out = tmp_path / "sweep"
    proc = cli(str(path), "--out", str(out), "--serial")
    deadline = time.time() + 300
    while not ((out / "results.jsonl").exists() and results(out)):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)                 # a batch system's stop (as Ctrl-C)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    first = results(out)
    assert 1 <= len(first) < 3

    proc = cli(str(path), "--out", str(out), "--serial")
    stdout, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    recs = results(out)
    assert recs[:len(first)] == first                # kept, not evaluated again
    assert len(recs) == 3 and len({r["key"] for r in recs}) == 3
    assert all(r["status"] == "ok" for r in recs)    # the stopped point was not "failed"
    assert f"{len(first)} of 3 points already in" in err
    assert "**pynq-z2**" in stdout and "| yes |" in stdout      # the front's table


@pytest.mark.slow
@pytest.mark.parametrize("victim_pid", ["pid", pytest.param("worker_pid", marks=pytest.mark.full)])
def test_worker_killed_mid_sweep(tmp_path, victim_pid):
    """Two worker processes; the first point's process (``pid``: what the OOM killer
    picks) or its worker (``worker_pid``) is killed (SIGKILL) while it works: Dask runs
    the point again elsewhere, the sweep completes, every point is recorded once, and no
    point process is left behind."""
    import threading

    space = [{"variant": "test_bnn_cnv"}, {"variant": "test_groupnet_cnv", "k": [2, 3]}]
    spec = load_spec(write_spec(tmp_path, space))
    out = tmp_path / "sweep"
    victim = spec.points[0]
    attempt = out / "points" / victim.key / "attempt.json"
    killed = {}

    def killer():
        deadline = time.time() + 300
        while time.time() < deadline:
            if attempt.exists():
                try:
                    record = json.loads(attempt.read_text())
                except json.JSONDecodeError:
                    continue
                os.kill(record[victim_pid], signal.SIGKILL)
                killed.update(record)
                return
            time.sleep(0.05)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    summary = run_sweep(spec, out, executor="local", workers=2, progress=False)
    t.join(timeout=5)
    assert killed, "the point never started"
    recs = results(out)
    assert sorted(r["label"] for r in recs) == sorted(p.label for p in spec.points)
    assert all(r["status"] == "ok" for r in recs), [r.get("error") for r in recs]
    assert killed["worker_pid"] != killed["pid"]        # the point ran in its own process
    assert json.loads(attempt.read_text())["pid"] != killed["pid"]    # ran again
    assert len(summary["rows"]) == 3
    with pytest.raises(ProcessLookupError):             # not left training as an orphan
        os.kill(killed["pid"], 0)


@pytest.mark.slow
@pytest.mark.full
def test_optuna_search_resumes(tmp_path):
    space = [{"variant": "test_groupnet_cnv", "k": [2, 3], "agg_bits": [2, 3]}]
    path = write_spec(tmp_path, space, search={"trials": 2, "seed": 0})
    out = tmp_path / "search"
    run_sweep(load_spec(path), out, executor="serial", progress=False)
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    def trials():
        storage = JournalStorage(JournalFileBackend(str(out / "optuna.journal")))
        return optuna.load_study(study_name="t", storage=storage).trials
    assert len(trials()) == 2 and all(t.values for t in trials())
    n = len(results(out))
    assert 1 <= n <= 2
    path.write_text(path.read_text().replace("trials: 2", "trials: 3"))
    summary = run_sweep(load_spec(path), out, executor="serial", progress=False)
    assert len(trials()) == 3                        # one more, not three
    assert summary["front"]["pynq-z2"]


def test_slurm_workers_carry_the_vivado_resource():
    pytest.importorskip("dask_jobqueue")
    from groupnet.explore.engine import slurm_cluster
    cluster = slurm_cluster({"cores": 4, "memory": "32GB", "queue": "fpga",
                             "walltime": "02:00:00"})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "--resources vivado=1" in script
    assert "#SBATCH -p fpga" in script and "#SBATCH -t 02:00:00" in script
