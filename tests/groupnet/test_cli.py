"""The command-line contract, end to end on a tiny variant (real data, real processes)."""

import json
import os
import subprocess
import sys

import pytest

from groupnet.models import list_models


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "groupnet.cli", *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if check and proc.returncode != 0:
        raise AssertionError(f"groupnet {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


def test_list_prints_registry():
    assert run("list").stdout.split() == list_models()
    assert run("list", "test_*").stdout.split() == list_models("test_*")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run("train", "test_groupnet_cnv", "--dataset", "fashion-mnist", "--epochs", "1",
        "--train-limit", "512", "--test-limit", "300", "--out", str(out), "--quiet",
        "-O", "k=3")
    return out


def test_train_eval_export(trained, tmp_path):
    ckpt = trained / "test_groupnet_cnv.pt"
    assert ckpt.exists() and (trained / "metrics.json").exists()

    res = json.loads(run("eval", str(ckpt), "--dataset", "fashion-mnist", "--limit", "200",
                         "--json").stdout)
    assert res["variant"] == "test_groupnet_cnv" and res["n"] == 200
    assert 0.0 <= res["accuracy"] <= 1.0

    onnx = tmp_path / "m.onnx"
    exp = json.loads(run("export", str(ckpt), "-o", str(onnx), "--verify", "50",
                         "--json").stdout)
    assert exp["verify"]["bit_exact"] and exp["verify"]["n"] == 50

    res_onnx = json.loads(run("eval", str(onnx), "--limit", "200", "--json").stdout)
    assert res_onnx["executor"] == "qonnx"
    assert res_onnx["accuracy"] == res["accuracy"]      # same predictions, bit-exact


@pytest.mark.parametrize("args, message", [
    (["train", "no_such_net", "--epochs", "1"], "unknown model 'no_such_net'"),
    (["train", "test_bnn_cnv", "-O", "kk=2"], "has no option(s) ['kk']"),
    (["train", "test_bnn_cnv", "--dataset", "mnist", "--data-dir", "/nonexistent"],
     "/nonexistent does not exist"),
    (["eval", "/nonexistent/m.pt"], "checkpoint not found"),
    (["export", "/nonexistent/m.pt"], "checkpoint not found"),
])
def test_user_errors_are_one_line(args, message):
    proc = run(*args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr


def test_existing_run_needs_resume_or_force(trained):
    proc = run("train", "test_groupnet_cnv", "--epochs", "1", "--out", str(trained),
               check=False)
    assert proc.returncode == 2 and "--resume" in proc.stderr
