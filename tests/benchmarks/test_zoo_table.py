"""The zoo summary's bookkeeping: seeds grouped, hardware columns reused only for unchanged
checkpoints, fine-tuned rows noted. The builds themselves are tested in tests/hw/."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import zoo_table  # noqa: E402


def test_seeds_group_also_before_a_recipe_suffix():
    assert zoo_table.config_name("a_kd_seed1") == "a_kd"
    assert zoo_table.config_name("a_kd_seed12_ft8_swa5") == "a_kd_ft8_swa5"
    assert zoo_table.config_name("a_kd_ft8") == "a_kd_ft8"
    assert zoo_table.config_name("a_seedless") == "a_seedless"
    # a zoo model: its config from the zoo index, not from its name
    assert zoo_table.config_name("groupnet_cnv_h_k4_kd_seed1") == "groupnet_cnv_h_k4.kd"
    assert zoo_table.config_name("groupnet_cnv_k2_agg4_kd_seed1_ft8_swa5_last") == \
        "groupnet_cnv_k2.agg4_kd_ft8_swa5_last"


def test_hardware_columns_are_reused_only_for_an_unchanged_checkpoint(tmp_path, monkeypatch):
    from groupnet.models import create_model
    from groupnet.models.checkpoint import save_checkpoint
    monkeypatch.setattr(zoo_table, "RESULTS", tmp_path / "results")
    (tmp_path / "results").mkdir()
    runs = tmp_path / "runs"
    model = create_model("test_bnn_cnv")
    rows = []
    for name, seed, init in (("a", 0, None), ("a_seed1", 1, None),
                             ("a_ft", 0, {"name": "a", "epochs": 16, "test_accuracy": 0.9})):
        (runs / name).mkdir(parents=True)
        save_checkpoint(runs / name / "test_bnn_cnv.pt", model)
        (runs / name / "metrics.json").write_text(json.dumps({"model_config": model.config}))
        rows.append({"name": name, "variant": "test_bnn_cnv", "k": 1, "width": 1.0,
                     "agg_bits": None, "precision": "binary", "distilled": False,
                     "epochs": 24 if init else 16, "init": init, "seed": seed,
                     "test_accuracy": 0.9 + seed / 100, "train_minutes": 5.0,
                     "train_cpu_minutes": 10.0})
    (tmp_path / "results" / "t.json").write_text(json.dumps({"rows": rows}))
    built = []
    monkeypatch.setattr(zoo_table, "hardware_of",
                        lambda run, runs_dir, work: built.append(run["name"]) or {"fps": 1})
    first = zoo_table.summarize("t", runs)
    assert [r["config"] for r in first["rows"]] == ["a", "a_ft"] and built == ["a", "a_ft"]
    assert first["rows"][0]["accuracies"] == [0.9, 0.91]
    reuse = {r["config"]: r for r in first["rows"]}
    built.clear()
    assert zoo_table.summarize("t", runs, reuse=reuse)["rows"][0]["hw"] == {"fps": 1}
    assert built == []
    # a checkpoint changed since: built again
    save_checkpoint(runs / "a_ft" / "test_bnn_cnv.pt", model, {"changed": True})
    zoo_table.summarize("t", runs, reuse=reuse)
    assert built == ["a_ft"]
    zoo_table.write(first)
    md = (tmp_path / "results" / "t_summary.md").read_text()
    assert "- `a_ft`: `a` (90.00%, 16 epochs) fine-tuned for 8 more" in md
    # fine-tuned from a fine-tuned model: the note names every stage before
    first["rows"][1]["init"] = {"name": "a_ft4", "epochs": 20, "stages": [16, 4],
                                "test_accuracy": 0.92}
    first["rows"][1]["epochs"] = 24
    zoo_table.write(first)
    md = (tmp_path / "results" / "t_summary.md").read_text()
    assert "- `a_ft`: `a_ft4` (92.00%, 16+4 epochs) fine-tuned for 4 more" in md
