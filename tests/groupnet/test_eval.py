"""`groupnet eval` reports each task's own metrics (issue 32), in text and JSON."""

import json

import pytest

from groupnet.cli import task_dataset, main
from groupnet.models.checkpoint import ZOO


@pytest.mark.parametrize("checkpoint, task, keys, words", [
    ("bnn_cnv_s.pt", "classification", {"accuracy", "correct"}, ["%"]),
    ("bnn_segnet.pt", "segmentation", {"miou", "accuracy"}, ["mIoU", "pixel accuracy"]),
    ("groupnet_detnet_k4_e36.pt", "detection", {"map50", "map"},
     ["mAP@0.5", "mAP@[.5:.95]"]),
])
def test_eval_reports_the_tasks_metrics(checkpoint, task, keys, words, capsys):
    assert main(["eval", str(ZOO / checkpoint), "-n", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == task and keys <= set(result)
    assert all(isinstance(result[k], (int, float)) for k in keys)
    assert main(["eval", str(ZOO / checkpoint), "-n", "8"]) == 0
    line = capsys.readouterr().out
    assert all(w in line for w in words), line


@pytest.mark.parametrize("variant, dataset", [
    ("test_groupnet_cnv", "fashion-mnist"), ("test_groupnet_segnet", "fashion-mnist-scenes"),
    ("test_groupnet_detnet", "fashion-mnist-boxes")])
def test_train_defaults_to_the_tasks_dataset(variant, dataset):
    assert task_dataset(variant, {}) == dataset
