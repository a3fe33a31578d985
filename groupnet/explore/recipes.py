"""The zoo's recipes: which spec of ``models/zoo/recipes/`` and which point of it (re)train
a zoo model (``groupnet zoo train NAME``).

A recipe point is a zoo model's when the checkpoint's recorded model and training settings
are the point's (what a sweep's ``reuse`` matches, ``point.matching_checkpoints``). A
weight-averaged run keeps its last epoch's own model beside the average
(``VARIANT_last.pt``), so one point can make two zoo models. The specs name zoo files
(teachers, starting models) from the repository root: they are read from there.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from groupnet.models.zoo_index import ZOO, ZooError, find

from .point import matching_checkpoints, point_dir
from .spec import Point, Spec, load_spec

RECIPES = ZOO / "recipes"
ROOT = ZOO.parents[1]           # where the recipes' relative paths start


@dataclass(frozen=True)
class Recipe:
    """The spec and point that train zoo model ``name``, and the file its training leaves."""
    name: str                   # the model's index name
    spec: Spec
    point: Point
    checkpoint: str             # in the point's train/ folder: VARIANT.pt or VARIANT_last.pt

    @property
    def spec_file(self) -> str:
        """The spec's path as typed from the repository root."""
        return _shown(self.spec.path)

    def sweep_folder(self, out: str | Path | None = None) -> Path:
        return Path(out or Path("runs") / "explore" / self.spec.name)

    def trained(self, out: str | Path | None = None) -> Path:
        """Where explore leaves the trained checkpoint."""
        return point_dir(self.sweep_folder(out), self.point) / "train" / self.checkpoint

    def explore_command(self, out: str | Path | None = None) -> str:
        return (f"groupnet explore {self.spec_file} --only {self.point.key}"
                + (f" -o {shlex.quote(str(out))}" if out else ""))

    def publish_command(self, out: str | Path | None = None) -> str:
        return (f"groupnet zoo add {shlex.quote(str(self.trained(out)))} --name {self.name} "
                "--force")


def _shown(path: Path) -> str:
    """A recipe's path as typed from the repository root."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _check_root() -> None:
    if Path.cwd().resolve() != ROOT.resolve():
        raise ZooError(f"the zoo's recipes name zoo files from the repository root: run "
                       f"this in {ROOT}")


def recipe_points(recipes: Path = RECIPES, zoo: Path = ZOO) -> list[tuple[Spec, Point,
                                                                          list[Path]]]:
    """Every point of every recipe spec, with the zoo checkpoints that have its recorded
    settings (none: the point is no zoo model's recipe)."""
    _check_root()
    out = []
    for path in sorted(Path(recipes).glob("*.yaml")):
        spec = load_spec(path)
        out += [(spec, p, list(matching_checkpoints(p, [str(zoo)]))) for p in spec.points]
    return out


def recipe_of(name: str, points: list | None = None) -> Recipe:
    """The recipe of zoo model ``name`` (an index name, or an old one); a model without
    one (trained before the recipes, or chosen by test-set checks only) is a ZooError.
    ``points``: ``recipe_points()`` when the caller has them already."""
    entry = find(name)
    r = entry["recipe"]
    last = bool(r["swa_epochs"]) and r["weights"] == "last epoch"
    for spec, point, found in recipe_points() if points is None else points:
        if any(f.name == entry["file"] for f in found):
            return Recipe(entry["name"], spec, point,
                          f"{point.variant}_last.pt" if last else f"{point.variant}.pt")
    specs = ", ".join(p.name for p in sorted(RECIPES.glob("*.yaml")))
    why = ("its recorded settings" if (ZOO / (Path(entry["file"]).stem + ".metrics.json"))
           .is_file() else "its settings (it was trained before the recipes and recorded none)")
    raise ZooError(f"zoo model {entry['name']} (models/zoo/{entry['file']}) has no recipe: no "
                   f"point of {_shown(RECIPES)}/ ({specs}) has {why}")
