"""The segmentation and detection tables read the zoo index: every committed summary's
numbers but the hardware columns are what the index and the metrics beside the checkpoints
say, and a summary written before the index (rows by old names) still gives its hardware
columns to --reuse-hw. The builds and simulations are tested in tests/hw/."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import task_table  # noqa: E402


@pytest.mark.parametrize("table", list(task_table.TABLES))
def test_the_committed_summaries_are_what_the_index_says(table, monkeypatch):
    committed = json.loads((task_table.RESULTS / f"{table}_summary.json").read_text())
    monkeypatch.setattr(task_table, "hardware_of", lambda *a: pytest.fail("built"))
    reuse = {r["name"]: r["hw"] for r in committed["rows"] if r.get("hw")}
    new = task_table.summarize(table, task_table.TABLES[table], committed["board"], 8,
                               with_hw=True, reuse=reuse)
    assert new["task"] == committed["task"] and new["targets"] == committed["targets"]
    assert len(new["rows"]) == len(committed["rows"])
    for old, row in zip(committed["rows"], new["rows"]):
        assert {**old, "name": None} == {**row, "name": None}, row["name"]
    with pytest.raises(SystemExit, match=r"no hardware columns for \w+.* --reuse-hw"):
        task_table.summarize(table, task_table.TABLES[table], "pynq-z2", 8, True, reuse={})
