"""The command-line contract, end to end on a tiny variant (real data, real processes)."""

import json
import os
import subprocess
import sys

import pytest

from groupnet.models import list_models
from groupnet.models.checkpoint import ZOO


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
        "--train-images", "512", "--test-images", "300", "--out", str(out), "--quiet",
        "-O", "k=3")
    return out


def test_train_eval_export(trained, tmp_path):
    ckpt = trained / "test_groupnet_cnv.pt"
    assert ckpt.exists() and (trained / "metrics.json").exists()

    res = json.loads(run("eval", str(ckpt), "--dataset", "fashion-mnist", "-n", "200",
                         "--json").stdout)
    assert res["variant"] == "test_groupnet_cnv" and res["n"] == 200
    assert 0.0 <= res["accuracy"] <= 1.0

    onnx = tmp_path / "m.onnx"
    exp = json.loads(run("export", str(ckpt), "-o", str(onnx), "-n", "50",
                         "--json").stdout)
    assert exp["verify"]["bit_exact"] and exp["verify"]["n"] == 50

    res_onnx = json.loads(run("eval", str(onnx), "-n", "200", "--json").stdout)
    assert res_onnx["executor"] == "qonnx"
    assert res_onnx["accuracy"] == res["accuracy"]      # same predictions, bit-exact


@pytest.mark.parametrize("args, message", [
    (["train", "no_such_net", "--epochs", "1"], "unknown model 'no_such_net'"),
    (["train", "test_bnn_cnv", "-O", "kk=2"], "has no option(s) ['kk']"),
    (["train", "test_bnn_cnv", "--dataset", "mnist", "--data-dir", "/nonexistent"],
     "/nonexistent does not exist"),
    (["eval", "/nonexistent/m.pt"], "checkpoint not found"),
    (["export", "/nonexistent/m.pt"], "checkpoint not found"),
    (["train", "test_bnn_cnv", "--epochs", "-1"],
     "argument --epochs: -1 is out of range: must be >= 1"),
    (["train", "test_bnn_cnv", "--epochs", "1", "--teacher", "/nonexistent/t.pt"],
     "--teacher: /nonexistent/t.pt: checkpoint not found"),
    (["eval", str(ZOO / "bnn_cnv_s.pt"), "-n", "0", "--json"],
     "argument -n/--test-images: 0 is out of range: must be >= 1"),
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


def test_boards_lists_the_table():
    out = run("boards").stdout
    for name in ("pynq-z1", "pynq-z2", "ultra96-v2", "kv260", "zcu104", "aup-zu3"):
        assert name in out
    rows = json.loads(run("boards", "--json").stdout)
    assert {r["name"] for r in rows} >= {"pynq-z2", "kv260"}


def test_build_checkpoint_verify_and_report(trained, tmp_path):
    """`groupnet build CHECKPOINT --verify`: exported, built, checked against PyTorch."""
    out = tmp_path / "build"
    proc = run("build", str(trained / "test_groupnet_cnv.pt"), "--board", "pynq-z2",
               "--out", str(out), "--verify", "-n", "8", "--to-step", "estimates", "--json")
    summary = json.loads(proc.stdout)
    assert summary["status"]["state"] == "complete"
    assert all(summary["verification"].values())
    assert set(summary["verification"]) >= {"pytorch", "convert_to_hw"}
    est = json.loads((out / "report" / "estimates.json").read_text())
    assert {"fps", "latency_us", "clock_mhz", "lut", "bram18", "dsp", "layers"} <= set(est)
    assert (out / "dataflow.onnx").is_file()

    rep = run("report", str(out))
    assert "branch g0 b2" in rep.stdout           # K=3: three branches per group
    assert (out / "report" / "dataflow.png").stat().st_size > 10_000


@pytest.mark.parametrize("args, message", [
    (["build", "/nonexistent/m.onnx", "--out", "/tmp/x"], "model file not found"),
    (["build", "/nonexistent/m.onnx", "--out", "/tmp/x", "--board", "zedboard"],
     "unknown board 'zedboard'"),
    (["report", "/nonexistent/build"], "run `groupnet build"),
])
def test_build_user_errors(args, message):
    proc = run(*args, check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_build_of_a_file_that_is_not_onnx(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x01this is not a protobuf model\xff\xfe")
    proc = run("build", str(garbage), "--out", str(tmp_path / "b"), check=False)
    message = "garbage.onnx: not a readable ONNX model"
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def _verbs():
    import argparse

    from groupnet.cli import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_one_spelling_per_option_on_every_verb():
    """Every shown option has help; an output is -o/--out, a count of test images
    -n/--test-images, a dataset one of the registered ones; a verb that reports has --json
    (and --quiet where it shows progress)."""
    import argparse

    from groupnet.models.data import DATASETS
    reporting = {"list", "zoo", "train", "eval", "export", "boards", "build", "report", "sim",
                 "deploy", "bitstream", "explore"}
    for verb, p in _verbs().items():
        shown = [a for a in p._actions if a.help != argparse.SUPPRESS]
        assert all(a.help for a in shown), (verb, [a.dest for a in shown if not a.help])
        flags = {f for a in p._actions for f in a.option_strings}
        by_dest = {a.dest: a for a in shown}
        if "out" in by_dest:
            assert by_dest["out"].option_strings == ["-o", "--out"], verb
        if "test_images" in by_dest and verb != "train":
            assert by_dest["test_images"].option_strings == ["-n", "--test-images"], verb
        if "dataset" in by_dest:
            assert list(by_dest["dataset"].choices) == list(DATASETS), verb
        if verb in reporting:
            assert "--json" in flags, verb
        if verb not in ("list", "boards", "zoo"):
            assert "--quiet" in flags, verb


@pytest.mark.parametrize("old, new", [
    (["sim", "b", "--frames", "7"], {"test_images": 7}),
    (["bitstream", "b", "--frames", "7"], {"test_images": 7}),
    (["deploy", "b", "--validation", "7"], {"test_images": 7}),
    (["eval", "m.pt", "--limit", "7"], {"test_images": 7}),
    (["export", "m.pt", "--output", "x.onnx", "--verify", "0"],
     {"out": "x.onnx", "test_images": 0}),
    (["report", "b", "--output", "x.png"], {"out": "x.png"}),
    (["build", "m.onnx", "-o", "b", "--verify", "7"], {"verify": True, "test_images": 7}),
    (["train", "v", "--train-limit", "7", "--test-limit", "8", "--val-limit", "9"],
     {"train_images": 7, "test_images": 8, "val_images": 9}),
])
def test_old_spellings_work_for_a_release_with_one_line_each(old, new, capsys):
    from groupnet.cli import build_parser
    args = build_parser().parse_args(old)
    assert {k: getattr(args, k) for k in new} == new
    err = capsys.readouterr().err.splitlines()
    olds = {"--frames", "--validation", "--limit", "--output", "--verify", "--train-limit",
            "--test-limit", "--val-limit"}
    assert len(err) == sum(a in olds for a in old) and len(err) >= 1
    assert all("is deprecated: use" in line for line in err)


def test_build_verify_is_a_switch_with_n_images():
    from groupnet.cli import build_parser
    ap = build_parser()
    assert (ap.parse_args(["build", "m.onnx", "--verify"]).verify,
            ap.parse_args(["build", "m.onnx", "--verify"]).test_images) == (True, None)
    args = ap.parse_args(["build", "m.onnx", "--verify", "-n", "5", "--force"])
    assert (args.verify, args.test_images, args.force) == (True, 5, True)
    assert ap.parse_args(["build", "m.onnx"]).verify is False
