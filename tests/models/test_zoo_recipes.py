"""The zoo's recipes are explore specs (models/zoo/recipes/*.yaml, training only): each
point's model and training settings are those a zoo checkpoint recorded (what `reuse`
matches), and every zoo model with recorded training is one of them, so `groupnet explore
RECIPE` + `groupnet zoo add` re-create the zoo."""

from pathlib import Path

from groupnet.explore.recipes import RECIPES, recipe_points
from groupnet.models.zoo_index import ZOO, load_index


def test_every_recipe_point_is_a_zoo_model_and_every_trained_zoo_model_has_a_recipe(
        monkeypatch):
    monkeypatch.chdir(ZOO.parents[1])        # the specs name zoo files from the root
    made = {}
    for spec, point, found in recipe_points(RECIPES):
        name = spec.path.name
        assert spec.boards == [], f"{name}: a recipe trains only (boards: [])"
        assert found, f"{name}: {point.label} is no zoo model's recipe"
        made[found[0].name] = name
    index = load_index()
    trained = {e["file"] for e in index
               if (ZOO / (Path(e["file"]).stem + ".metrics.json")).is_file()}
    # a weight-averaged run's last-epoch model comes from that run (VARIANT_last.pt)
    last = {e["file"] for e in index
            if e["recipe"]["swa_epochs"] and e["recipe"]["weights"] == "last epoch"}
    assert trained - last - set(made) == set(), "zoo models without a recipe"
    assert len(made) == 25
