"""`groupnet train` under torchrun: 2 CPU processes with gloo (a real two-process run).

Both ranks end with identical state dicts (rank 0 compares their hashes and records it),
a run stopped after an epoch and resumed under torchrun ends with exactly the model of
the uninterrupted run, and a two-process checkpoint refuses a one-process resume. What is
not identical to one process with the same global batch: batch norm normalizes each
rank's half of the batch with that half's statistics (CPU: no SyncBatchNorm), and each
rank augments with its own generator (docs/models.md "Training on several GPUs").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BIN = Path(sys.executable).parent
ARGS = ["train", "test_groupnet_cnv", "--epochs", "2", "--train-images", "512",
        "--test-images", "256", "--eval-subset", "128", "--batch-size", "64", "--threads", "1",
        "--quiet"]


def torchrun(*extra: str, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(BIN / "torchrun"), f"--nproc-per-node={nproc}",
                           "--standalone", "--no-python", str(BIN / "groupnet"), *ARGS,
                           *extra], capture_output=True, text=True, timeout=900, env=env)


@pytest.mark.slow
def test_two_processes_identical_ranks_and_exact_resume(tmp_path, fmnist_test):
    full = torchrun("--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr[-3000:]
    metrics = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert metrics["distributed"] == {"world_size": 2, "backend": "gloo",
                                      "identical_state_dicts": True, "batch_per_rank": 32}
    assert "identical on every rank: True" in full.stdout

    first = torchrun("--out", str(tmp_path / "part"), "--stop-after", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    last = torch.load(tmp_path / "part" / "last.pt", weights_only=False)
    assert len(last["rank_generators"]) == 2 and len(last["history"]) == 1
    # a one-process resume of a two-process run is refused with the command to use
    one = subprocess.run([str(BIN / "groupnet"), *ARGS, "--out", str(tmp_path / "part"),
                          "--resume"], capture_output=True, text=True, timeout=300)
    assert one.returncode != 0 and "resume it under torchrun" in one.stderr
    rest = torchrun("--out", str(tmp_path / "part"), "--resume")
    assert rest.returncode == 0, rest.stderr[-3000:]
    a = torch.load(tmp_path / "full" / "test_groupnet_cnv.pt", weights_only=False)
    b = torch.load(tmp_path / "part" / "test_groupnet_cnv.pt", weights_only=False)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


@pytest.mark.slow
@pytest.mark.full
def test_two_processes_average_weights_alike(tmp_path, fmnist_test):
    """--swa-epochs under torchrun: every rank averages the same weights and recomputes the
    batch-norm statistics on all the training images, so the ranks end identical."""
    run = torchrun("--out", str(tmp_path), "--swa-epochs", "1", "--swa-lr", "2e-3")
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["distributed"]["identical_state_dicts"] is True
    assert metrics["swa"]["snapshots"] == 1 and metrics["swa"]["bn_images"] == 512
