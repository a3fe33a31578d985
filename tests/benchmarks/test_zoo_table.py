"""The zoo summary reads the zoo index: seeds grouped by configuration, a fine-tune counting
its whole recipe, hardware columns reused only for unchanged checkpoints; the committed
summary's numbers are the index's. The builds themselves are tested in tests/hw/."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import zoo_table  # noqa: E402
from tests.models.test_zoo_publish import _run  # noqa: E402


@pytest.fixture
def zoo(tmp_path):
    """A temporary zoo: two seeds of one model and a fine-tune of seed 0."""
    from groupnet.models.zoo_publish import publish
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    base = _run(tmp_path / "a0", acc=0.9)
    publish(base, "test_bnn_cnv.s0", zoo)
    publish(_run(tmp_path / "a1", seed=1, acc=0.91), "test_bnn_cnv.s1", zoo)
    publish(_run(tmp_path / "ft", init=base, acc=0.92), "test_bnn_cnv.ft_s0", zoo)
    return zoo


def test_rows_come_from_the_index_and_hardware_is_reused_only_when_unchanged(
        zoo, tmp_path, monkeypatch):
    from groupnet.models.zoo_publish import publish
    monkeypatch.setattr(zoo_table, "RESULTS", tmp_path / "results")
    (tmp_path / "results").mkdir()
    built = []
    monkeypatch.setattr(zoo_table, "hardware_of",
                        lambda ckpt, work: built.append(ckpt.name) or {"fps": 1})
    first = zoo_table.summarize("t", ["test_bnn_cnv", "test_bnn_cnv.ft"], zoo)
    rows = first["rows"]
    assert [r["config"] for r in rows] == ["test_bnn_cnv", "test_bnn_cnv.ft"]
    assert rows[0]["accuracies"] == [0.9, 0.91] and rows[0]["seeds"] == [0, 1]
    assert rows[1]["epochs"] == 4 and rows[1]["init"]["name"] == "test_bnn_cnv.s0"
    assert rows[1]["train_cpu_minutes"] == 2.0            # the parent's minute and its own
    assert built == ["test_bnn_cnv.s0.pt", "test_bnn_cnv.ft_s0.pt"]
    reuse = {r["config"]: r for r in rows}
    built.clear()
    assert zoo_table.summarize("t", ["test_bnn_cnv"], zoo, reuse=reuse)["rows"][0]["hw"] == {
        "fps": 1}
    assert built == []
    # a checkpoint replaced since: built again
    publish(_run(tmp_path / "ft2", init=tmp_path / "a0" / "test_bnn_cnv.pt", acc=0.93),
            "test_bnn_cnv.ft_s0", zoo, force=True)
    zoo_table.summarize("t", ["test_bnn_cnv", "test_bnn_cnv.ft"], zoo, reuse=reuse)
    assert built == ["test_bnn_cnv.ft_s0.pt"]
    zoo_table.write(first)
    md = (tmp_path / "results" / "t_summary.md").read_text()
    assert "- `test_bnn_cnv.ft`: `test_bnn_cnv.s0` (90.00%, 2 epochs) fine-tuned for 2 more" in md
    assert "| `test_bnn_cnv` | 1 | None | - | no | 90.50% (mean of 2: 90.00, 91.00) |" in md
    with pytest.raises(Exception, match="no zoo model of configuration 'nope'"):
        zoo_table.summarize("t", ["nope"], zoo, with_hw=False)


def test_the_committed_summary_is_what_the_index_says():
    """Every number of benchmarks/results/zoo_fashion-mnist_summary.json but the hardware
    columns, recomputed from models/zoo/index.json and the metrics beside the checkpoints
    (a row named by its configuration, or by the old name of its first seed)."""
    committed = json.loads((ROOT / "benchmarks" / "results"
                            / "zoo_fashion-mnist_summary.json").read_text())
    new = zoo_table.summarize("zoo_fashion-mnist", zoo_table.TABLES["zoo_fashion-mnist"],
                              with_hw=False)
    from groupnet.models.zoo_index import load_index
    old_name = {e["config"]: e["aliases"][0] for e in sorted(
        load_index(), key=lambda e: -e["recipe"]["seed"]) if e["aliases"]}   # seed 0's
    assert len(committed["rows"]) == len(new["rows"])
    for old, row in zip(committed["rows"], new["rows"]):
        assert old["config"] in (row["config"], old_name.get(row["config"]))
        for key in ("accuracies", "seeds", "epochs", "k", "width", "agg_bits", "distilled",
                    "binary_macs", "train_cpu_minutes", "lr", "swa", "swa_seeds"):
            assert old[key] == row[key], (row["config"], key)
        if old["init"]:
            assert {**old["init"], "name": None} == {**row["init"], "name": None}
    assert [t["value"] for t in committed["targets"]] == [t["value"] for t in new["targets"]]
