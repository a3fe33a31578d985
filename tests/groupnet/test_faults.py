"""Fault injection: bad inputs, foreign folders, interrupts and kills (issue 32).

Each class of user error is one test parametrised over its cases, run in-process through
``groupnet.cli.main``: exit code 2, one line on stderr, no traceback. Signals (Ctrl-C,
SIGKILL) run the CLI in a subprocess. One tiny build (``test_groupnet_cnv`` through
'estimates') is shared; tests that change a build work on a copy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from groupnet.cli import main
from groupnet.models import create_model
from groupnet.models.export import export_qonnx


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main([str(a) for a in args])
    except SystemExit as exit_:             # argparse: a bad option
        rc = exit_.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_user_error(rc: int, err: str, *words: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return export_qonnx(create_model("test_groupnet_cnv").eval(),
                        tmp_path_factory.mktemp("m") / "t1.onnx")


@pytest.fixture(scope="module")
def build(model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("b") / "b1"
    assert main(["build", str(model), "--out", str(out), "--to-step", "estimates",
                 "--quiet"]) == 0
    return out


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def copy_build(build: Path, dest: Path) -> Path:
    shutil.copytree(build, dest, ignore=shutil.ignore_patterns(".groupnet.lock"))
    return dest


# ------------------------------------------------------------------ 1. output folders
@pytest.mark.parametrize("case", ["foreign", "cwd", "parent_is_file", "is_file", "holds_input",
                                  "deploy_into_build", "deploy_foreign"])
def test_force_never_deletes_what_the_tool_did_not_write(case, model, build, work, capsys):
    (work / "mydata").mkdir()
    (work / "mydata" / "thesis.txt").write_text("years of work")
    (work / "afile").write_text("x")
    shutil.copy(model, work / "t1.onnx")
    if case == "foreign":
        args, words = ["build", model, "--out", "mydata", "--force"], ["thesis.txt"]
    elif case == "cwd":
        args, words = ["build", "t1.onnx", "--out", ".", "--force"], ["current folder"]
    elif case == "parent_is_file":
        args, words = ["build", model, "--out", "afile/b"], ["is a file"]
    elif case == "is_file":
        args, words = ["build", model, "--out", "afile", "--force"], ["is a file"]
    elif case == "holds_input":
        args, words = ["build", work / "mydata" / "t1.onnx", "--out", "mydata", "--force"], \
            ["input"]
        shutil.copy(model, work / "mydata" / "t1.onnx")
    elif case == "deploy_into_build":
        b = copy_build(build, work / "b1x")
        args, words = ["deploy", b, "-o", b, "--force", "-n", 2], ["input"]
    else:
        args, words = ["deploy", build, "-o", "mydata", "--force", "-n", 2], \
            ["thesis.txt"]
    before = sorted(p.name for p in work.rglob("*"))
    rc, _, err = cli(capsys, *args)
    assert_user_error(rc, err, *words)
    assert sorted(p.name for p in work.rglob("*")) == before      # nothing touched
    assert (work / "mydata" / "thesis.txt").read_text() == "years of work"


def test_force_replaces_a_build_and_marks_it(build, model, work, capsys):
    b = copy_build(build, work / "b")
    (b / "dataflow.onnx").write_bytes(b"old")
    rc, _, err = cli(capsys, "build", model, "--out", b, "--to-step", "estimates", "--quiet")
    assert rc == 2 and "--force" in err
    assert cli(capsys, "build", model, "--out", b, "--to-step", "estimates", "--quiet",
               "--force")[0] == 0
    assert json.loads((b / ".groupnet").read_text())["kind"] == "build"
    assert (b / "dataflow.onnx").read_bytes() != b"old"
    assert not list(work.glob(".b.replaced-*"))          # the old build is gone after success


def test_a_build_of_an_older_version_counts_as_a_build(build, model, work):
    from groupnet.outdir import check_output
    b = copy_build(build, work / "old")
    (b / ".groupnet").unlink()                            # no marker: build.json + dataflow
    assert check_output(b, "build") is True


def test_a_failed_forced_build_puts_the_old_one_back(build, work, capsys):
    b = copy_build(build, work / "b")
    before = (b / "dataflow.onnx").read_bytes()
    (work / "bad.onnx").write_bytes(os.urandom(300))
    rc, _, err = cli(capsys, "build", work / "bad.onnx", "--out", b, "--force", "--quiet")
    assert_user_error(rc, err, "bad.onnx")
    assert (b / "dataflow.onnx").read_bytes() == before


def test_one_process_per_output_folder(build, model, work, capsys):
    from groupnet.outdir import lock
    b = copy_build(build, work / "b")
    held = lock(b)
    try:
        rc, _, err = cli(capsys, "deploy", b, "-n", 2)
        assert rc == 0                                    # b/deploy: another folder
        rc, _, err = cli(capsys, "build", model, "--out", b, "--force", "--quiet")
        assert_user_error(rc, err, "in use", str(os.getpid()))
    finally:
        held.release()


# ------------------------------------------------------------------ 2. numbers
@pytest.mark.parametrize("args, option", [
    (["build", "m.onnx", "--out", "o", "--clock-mhz", "-100"], "--clock-mhz"),
    (["build", "m.onnx", "--out", "o", "--clock-mhz", "0"], "--clock-mhz"),
    (["build", "m.onnx", "--out", "o", "--target-fps", "-5"], "--target-fps"),
    (["build", "m.onnx", "--out", "o", "--budget", "1.5"], "--budget"),
    (["build", "m.onnx", "--out", "o", "-n", "0"], "-n/--test-images"),
    (["eval", "m.onnx", "-n", "0"], "-n/--test-images"),
    (["sim", "b", "-n", "0"], "-n/--test-images"),
    (["sim", "b", "--backpressure", "2"], "--backpressure"),
    (["sim", "b", "--backpressure", "foo"], "--backpressure"),
    (["sim", "b", "--backpressure", "0"], "--backpressure"),
    (["sim", "b", "--input-rate", "0"], "--input-rate"),
    (["deploy", "b", "-n", "0"], "-n/--test-images"),
    (["export", "c.pt", "-n", "-1"], "-n/--test-images"),
    (["train", "test_groupnet_cnv", "--batch-size", "0"], "--batch-size"),
    (["train", "test_groupnet_cnv", "--lr", "-1"], "--lr"),
    (["train", "test_groupnet_cnv", "--epochs", "0"], "--epochs"),
    (["bitstream", "b", "--clock-mhz", "nan"], "--clock-mhz"),
])
def test_impossible_numbers_are_refused_when_parsed(args, option, work, capsys):
    rc, _, err = cli(capsys, *args)
    assert_user_error(rc, err, f"argument {option}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line(work, capsys):
    rc, _, err = cli(capsys, "train", "test_groupnet_cnv", "--device", "cuda")
    assert_user_error(rc, err, "--device", "no CUDA")


def test_a_missed_target_is_said(build, model, work, capsys):
    b = copy_build(build, work / "b")
    rc, out, _ = cli(capsys, "build", model, "--out", b, "--target-fps", "1e9", "--from-step",
                     "folding", "--to-step", "estimates", "--quiet")
    assert rc == 0 and "target NOT MET" in out
    est = json.loads((b / "report" / "estimates.json").read_text())
    assert est["target_met"] is False and est["target_fps"] == 1e9


# ------------------------------------------------------------------ 4. no tracebacks
def _bad_inputs(kind: str, build: Path, model: Path, work: Path) -> tuple[list, list]:
    """(command, words of the one-line error) for one class of bad input."""
    (work / "afile").write_text("x")
    if kind == "random_onnx":
        (work / "r.onnx").write_bytes(os.urandom(500))
        return ["eval", "r.onnx"], ["r.onnx", "not a readable ONNX"]
    if kind == "foreign_onnx":
        import onnx
        from onnx import TensorProto, helper
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 28, 28])
        onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])],
                                                      "g", [x], [y])), work / "f.onnx")
        return ["eval", "f.onnx"], ["f.onnx", "groupnet export"]
    if kind == "from_step_before_folding":
        b = copy_build(build, work / "b")
        for f in (b / "intermediate_models").glob("*.onnx"):
            if "folding" in f.name or "estimates" in f.name:
                f.unlink()
        return ["build", model, "--out", b, "--from-step", "estimates", "--quiet"], \
            ["'folding'", "--from-step folding"]
    if kind == "from_step_other_model":
        torch.manual_seed(1)
        other = export_qonnx(create_model("test_groupnet_cnv").eval(), work / "other.onnx")
        b = copy_build(build, work / "b")
        return ["build", other, "--out", b, "--from-step", "estimates", "--quiet"], \
            ["another model", "SHA-256"]
    if kind == "from_step_other_folding":
        b = copy_build(build, work / "b")
        return ["build", model, "--out", b, "--from-step", "estimates", "--target-fps", 500,
                "--quiet"], ["no --target-fps", "--from-step folding"]
    if kind == "sim_corrupt_dataflow":
        b = copy_build(build, work / "b")
        (b / "dataflow.onnx").write_bytes(b"\x08garbage")
        return ["sim", b, "-n", 2], ["dataflow.onnx", "not a readable ONNX"]
    if kind == "deploy_corrupt_build_json":
        b = copy_build(build, work / "b")
        (b / "build.json").write_text("{not json")
        return ["deploy", b, "-n", 2], ["build.json", "not a readable build record"]
    if kind == "report_into_a_file":
        return ["report", build, "-o", "afile/pic.png"], ["afile", "is a file"]
    if kind == "explore_out_a_file":
        (work / "s.yaml").write_text(
            "name: s\ntrain: {epochs: 1}\nspace: [{variant: test_groupnet_cnv}]\n"
            "boards: [pynq-z2]\nsimulate: none\n")
        return ["explore", "s.yaml", "--out", "afile", "--serial"], ["afile", "is a file"]
    if kind == "train_out_a_file":
        return ["train", "test_groupnet_cnv", "--out", "afile"], ["afile", "is a file"]
    if kind == "train_out_a_build":
        return ["train", "test_groupnet_cnv", "--out", build, "--force"], ["a build folder"]
    if kind == "folding_not_json":
        (work / "f.json").write_text("{PE: 2")
        return ["build", model, "--out", "o", "--folding", "f.json"], ["f.json", "JSON"]
    if kind == "folding_bad_pe":
        (work / "f.json").write_text('{"MVAU_hls_0": {"PE": 0, "SIMD": 2}}')
        return ["build", model, "--out", "o", "--folding", "f.json"], \
            ["f.json", "MVAU_hls_0.PE", "positive integer"]
    if kind == "deploy_labels_out_of_range":
        import numpy as np

        from groupnet.flow import test_images
        x, y = test_images(build, 4)
        np.save(work / "x.npy", x)
        np.save(work / "y.npy", np.where(np.arange(4) == 2, 40, y))
        return ["deploy", build, "-o", "d", "--images", "x.npy", "--labels", "y.npy"], \
            ["labels", "10 classes"]
    if kind == "export_an_onnx":
        return ["export", model], ["ONNX", "checkpoint"]
    if kind == "export_into_a_folder":
        from groupnet.models.checkpoint import save_checkpoint
        save_checkpoint(work / "c.pt", create_model("test_groupnet_cnv"))
        (work / "d").mkdir()
        return ["export", "c.pt", "-o", "d", "--force", "-n", 0], ["d", "is a folder"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    "random_onnx", "foreign_onnx", "from_step_before_folding", "from_step_other_model",
    "from_step_other_folding", "sim_corrupt_dataflow", "deploy_corrupt_build_json",
    "report_into_a_file", "explore_out_a_file", "train_out_a_file", "train_out_a_build",
    "folding_not_json", "folding_bad_pe", "deploy_labels_out_of_range", "export_an_onnx",
    "export_into_a_folder"])
def test_user_errors_are_one_line(kind, build, model, work, capsys):
    args, words = _bad_inputs(kind, build, model, work)
    rc, _, err = cli(capsys, *args)
    assert_user_error(rc, err, *words)


# ------------------------------------------------------------------ 3. exit codes, resumes
def test_export_warns_on_a_mid_epoch_checkpoint(work, capsys):
    from groupnet.models.checkpoint import save_checkpoint
    net = create_model("test_groupnet_cnv").train()
    net(torch.rand(8, 1, 28, 28) * 255)               # the quantizers' scales initialised
    save_checkpoint(work / "last.pt", net.eval(), history=[], epoch_position={"step": 3})
    rc, _, err = cli(capsys, "export", "last.pt", "-o", "l.onnx", "-n", 0)
    assert rc == 0 and "mid-epoch" in err


def groupnet(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "groupnet.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"}, **kw)


def build_paused_at(step: str, *args) -> subprocess.Popen:
    """``groupnet build ARGS`` in a subprocess that prints PAUSED and sleeps when it reaches
    ``step`` (the test's hook: the step function wrapped, no hook in the library)."""
    code = (
        "import sys, time\n"
        "from groupnet.hw.steps import STEPS\n"
        f"step = STEPS[{step!r}]\n"
        "def paused(model, ctx):\n"
        "    print('PAUSED', file=sys.__stdout__, flush=True)  # stdout goes to build.log\n"
        "    time.sleep(120)\n"
        "    return step(model, ctx)\n"
        f"STEPS[{step!r}] = paused\n"
        "from groupnet.cli import main\n"
        f"sys.exit(main({[str(a) for a in ('build', *args)]!r}))\n")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})


def wait_for_line(proc: subprocess.Popen, text: str, timeout: float = 120) -> None:
    t0 = time.time()
    for line in proc.stdout:
        if text in line:
            return
        assert time.time() - t0 < timeout, f"no '{text}' after {timeout} s"
    raise AssertionError(f"exited ({proc.wait()}) before '{text}': {proc.stderr.read()}")


def test_interrupted_build_exits_130_and_says_how_to_resume(model, work):
    proc = build_paused_at("folding", model, "--out", "b", "--to-step", "estimates")
    wait_for_line(proc, "PAUSED")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    command = err.split("resume with: ", 1)[1].strip()
    assert command == f"groupnet build {model} --out b --to-step estimates --from-step folding"
    status = json.loads((work / "b" / "report" / "status.json").read_text())
    assert status["state"] == "failed" and status["failed_step"] == "folding"
    assert main(command.split()[1:] + ["--quiet"]) == 0         # and it resumes


def test_killed_build_is_not_running_and_leaves_no_lock(model, work):
    from groupnet.hw.build import BuildPaths
    from groupnet.hw.context import read_status
    from groupnet.outdir import lock
    proc = build_paused_at("folding", model, "--out", "b", "--to-step", "estimates")
    wait_for_line(proc, "PAUSED")
    proc.kill()
    proc.wait()
    paths = BuildPaths(work / "b")
    assert json.loads(paths.status.read_text())["state"] == "running"   # what it left
    assert read_status(paths)["state"] == "killed"
    assert json.loads(paths.status.read_text())["state"] == "killed"
    lock(work / "b").release()                                          # not stuck


def test_interrupted_train_exits_130(work):
    proc = groupnet("train", "test_groupnet_cnv", "--epochs", "1", "--train-images", "20000",
                    "--test-images", "100", "--out", "r", "--batch-size", "16")
    t0 = time.time()
    while not (work / "r" / ".groupnet").exists():
        assert time.time() - t0 < 60 and proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    time.sleep(8)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
