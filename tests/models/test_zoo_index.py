"""The zoo as data: models/zoo/index.json is what the checkpoints and their metrics say,
names resolve (old names with one warning line), and the command line reads it."""

import json

import pytest

from groupnet.models.zoo_index import INDEX, ZOO, ZooError, build_index, checkpoint, find


def test_index_is_up_to_date_with_the_checkpoints():
    """Regenerated from the files it equals the committed index: every checkpoint is in
    it with its SHA-256, recipe and metrics (`python -m groupnet.models.zoo_index
    --write` after changing the zoo)."""
    assert json.loads(INDEX.read_text()) == build_index()
    entries = json.loads(INDEX.read_text())
    assert {e["file"] for e in entries} == {p.name for p in ZOO.glob("*.pt")}
    assert len({e["name"] for e in entries}) == len(entries)
    names = {e["name"] for e in entries}
    for e in entries:     # recipes refer to models of the index, never to paths
        assert e["recipe"]["teacher"] in names | {None}, e["name"]
        assert e["recipe"]["parent"] in names | {None}, e["name"]
        assert e["name"].startswith(e["config"]) and e["name"].endswith(f"s{e['recipe']['seed']}")


def test_seeds_of_one_recipe_share_a_config_and_fine_tunes_count_their_chain():
    a, b = find("groupnet_cnv_h_k4.kd_s0"), find("groupnet_cnv_h_k4.kd_s1")
    assert a["config"] == b["config"] == "groupnet_cnv_h_k4.kd"
    last = find("groupnet_cnv_k2.agg4_kd_ft8_swa5_last_s1")
    assert last["recipe"]["parent"] == "groupnet_cnv_k2.agg4_kd_ft8_s0"
    assert last["recipe"]["total_epochs"] == 16 + 4 + 4 + 5
    assert last["recipe"]["weights"] == "last epoch"
    assert find("fp_cnv_s.val_s0")["chosen_on"] == "val"
    assert a["chosen_on"] == "test checks"


def test_old_names_work_with_one_warning_line(capsys):
    assert checkpoint("groupnet_cnv_h_k4_kd_seed1") == ZOO / "groupnet_cnv_h_k4_kd_seed1.pt"
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "use 'groupnet_cnv_h_k4.kd_s1'" in err[0]
    assert checkpoint("groupnet_cnv_h_k4.kd_s1") == ZOO / "groupnet_cnv_h_k4_kd_seed1.pt"
    assert capsys.readouterr().err == ""
    with pytest.raises(ZooError, match="no zoo model 'groupnet_cnv_h_k9'; did you mean"):
        find("groupnet_cnv_h_k9")


def test_zoo_verb_lists_and_shows(capsys):
    from groupnet.cli import main
    assert main(["zoo", "list", "groupnet_cnv_h_k4.*", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in listed] == ["groupnet_cnv_h_k4.kd_s0", "groupnet_cnv_h_k4.kd_s1"]
    assert main(["zoo", "show", "bnn_cnv.kd_s0"]) == 0
    out = capsys.readouterr().out
    assert "distilled from fp_cnv_h.s0" in out and "test_accuracy 0.9111" in out
    assert main(["zoo", "show", "nope"]) == 2
