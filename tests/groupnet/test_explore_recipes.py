"""``groupnet zoo train NAME``: the recipe spec and point of a zoo model
(groupnet/explore/recipes.py), and the verb's dry run."""

import json

import pytest

from groupnet.explore.recipes import ROOT, recipe_of, recipe_points
from groupnet.models.zoo_index import ZooError


@pytest.fixture(scope="module")
def points():
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)                  # the specs name zoo files from the root
        yield recipe_points()


@pytest.mark.parametrize("name, spec, label, checkpoint", [
    ("bnn_cnv_h.kd_s0", "fashion_kd.yaml", "bnn_cnv_h seed=0", "bnn_cnv_h.pt"),
    ("groupnet_cnv_h_k4_kd_seed1", "fashion_kd.yaml", "groupnet_cnv_h_k4 seed=1",
     "groupnet_cnv_h_k4.pt"),                                         # an old name
    ("groupnet_cnv_k2.agg4_kd_ft4_s0", "fashion_k2_ft4.yaml", "groupnet_cnv_k2 agg_bits=4 "
     "seed=0", "groupnet_cnv_k2.pt"),
    ("groupnet_cnv_k2.agg4_kd_ft8_swa5_s1", "fashion_k2_swa5.yaml",
     "groupnet_cnv_k2 agg_bits=4 seed=1", "groupnet_cnv_k2.pt"),
    ("groupnet_cnv_k2.agg4_kd_ft8_swa5_last_s0", "fashion_k2_swa5.yaml",
     "groupnet_cnv_k2 agg_bits=4 seed=0", "groupnet_cnv_k2_last.pt"),  # the run's last epoch
    ("groupnet_detnet_k4.e36_s0", "detection_e36.yaml", "groupnet_detnet_k4 seed=0",
     "groupnet_detnet_k4.pt"),
])
def test_a_zoo_model_has_its_recipe_point(points, name, spec, label, checkpoint):
    r = recipe_of(name, points)
    assert (r.spec.path.name, r.point.label, r.checkpoint) == (spec, label, checkpoint)
    assert r.spec_file == f"models/zoo/recipes/{spec}"
    assert r.trained().as_posix() == (f"runs/explore/{r.spec.name}/points/{r.point.key}/train/"
                                      f"{checkpoint}")


def test_a_model_without_recipe_is_one_error_naming_it_and_the_recipes(points):
    with pytest.raises(ZooError) as err:
        recipe_of("groupnet_cnv_s_k4.s0", points)
    msg = str(err.value)
    assert msg.startswith("zoo model groupnet_cnv_s_k4.s0 (models/zoo/groupnet_cnv_s_k4.pt) "
                          "has no recipe: no point of models/zoo/recipes/ (detection.yaml, ")
    assert "trained before the recipes" in msg and "\n" not in msg


def test_the_recipes_are_read_from_the_repository_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ZooError, match="run this in"):
        recipe_points()


def test_zoo_train_dry_run_says_what_would_run(monkeypatch, capsys):
    from groupnet.cli import main
    monkeypatch.chdir(ROOT)
    assert main(["zoo", "train", "groupnet_cnv_k2.agg4_kd_ft8_s0", "--dry-run", "-o",
                 "runs/ft8"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("groupnet_cnv_k2.agg4_kd_ft8_s0: models/zoo/recipes/"
                             "fashion_k2_ft8.yaml, point groupnet_cnv_k2 agg_bits=4 seed=0 "
                             "(key ")
    key = out[0].split("(key ")[1].rstrip(")")
    assert out[1] == (f"  would run: groupnet explore models/zoo/recipes/fashion_k2_ft8.yaml "
                      f"--only {key} -o runs/ft8")
    assert out[2] == (f"  then compare, and publish: groupnet zoo add runs/ft8/points/{key}/"
                      "train/groupnet_cnv_k2.pt --name groupnet_cnv_k2.agg4_kd_ft8_s0 --force")
    assert not (ROOT / "runs/ft8").exists()                         # nothing trained
    assert main(["zoo", "train", "bnn_cnv_h.kd_s1", "--dry-run", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["spec"], got["point"], got["dry_run"]) == ("models/zoo/recipes/fashion_kd.yaml",
                                                           "bnn_cnv_h seed=1", True)
    assert main(["zoo", "train", "fp_cnv_s.s0", "--dry-run"]) == 2
    assert "fp_cnv_s.s0" in capsys.readouterr().err
