"""Sweep specification: a YAML file -> the list of design points to evaluate.

A spec names a design space and how to evaluate each point::

    name: fashion-small            # default output folder: runs/explore/<name>
    dataset: fashion-mnist
    train:                         # models.train.TrainConfig fields; epochs is required
      epochs: 2
      train_limit: 6000            # (teacher, init: files, one each per sweep)
    space:                         # the union of these grids
      - variant: bnn_cnv_s         # one registered variant (or a list of them) ...
        width: [0.25, 0.5]         # ... and values of its options or of train fields
      - variant: groupnet_cnv_s_k2
        k: [2, 4]
        agg_bits: [2, 4]
      - checkpoint: models/zoo/groupnet_cnv_h_k4_kd.pt   # trained already (glob allowed)
      - {variant: bnn_cnv, untrained: true}   # hardware cost only (random weights)
    boards: [pynq-z2, zcu104]      # every point is built for each board ([]: train only,
                                   # e.g. the zoo's recipes, models/zoo/recipes/)
    fold: {budget: 0.7}            # or {target_fps: 2000}
    build_to: estimates            # or a later step (Vivado: the point needs a 'vivado' worker)
    simulate: {points: front, frames: 4}   # none | front | all: Verilator FPS
    reuse: [models/zoo]            # trained checkpoints taken instead of training, when
                                   # their recorded model and training settings match
    park: models/sweeps/NAME       # trainings kept here (finished checkpoints and resume
                                   # points) to commit: another machine goes on (park.py)
    search: {engine: optuna, trials: 12, seed: 0}   # optional: search instead of the grid

A mistake is one line naming the file and the key (``spec.yaml: space[1].widht: ...``).
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from groupnet.errors import UserError

TOP_KEYS = {"name", "dataset", "train", "space", "boards", "fold", "build_to", "simulate",
            "reuse", "search", "verify", "park"}
SIM_POINTS = ("none", "front", "all")
# training settings that decide the trained model (others, e.g. device, do not)
TRAIN_IDENTITY = ("epochs", "relaxed_epochs", "batch_size", "lr", "weight_decay", "seed",
                  "augment", "train_limit", "test_limit", "teacher", "distill_alpha",
                  "distill_temperature", "gate_lr_scale")
TRAIN_FREE = ("data_dir", "device", "eval_subset", "fast")   # allowed, not part of the key
# the validation protocol (models/train.py) decides the model too; it is part of a point's
# key only when on, so points of specs written before it keep their keys (such a spec
# says ``validation: false`` to keep its points and results)
PROTOCOL = "validation"
# identity settings added later: part of the key only when set away from their default
# (older points keep theirs); ``init`` (fine-tuning's start), as the teacher, by content;
# ``swa_lr`` counts only with weight averaging on
WHEN_SET = {"val_limit": None, "init": None, "swa_epochs": 0}
# training settings that name a file: one per sweep (top-level ``train``), keyed by content
FILE_SETTINGS = ("teacher", "init")


def train_identity(settings: dict) -> dict:
    """The settings of ``TRAIN_IDENTITY`` (and ``validation`` when on) of a run."""
    ident = {k: settings.get(k) for k in TRAIN_IDENTITY}
    if settings.get(PROTOCOL):
        ident[PROTOCOL] = True
    ident |= {k: settings[k] for k, default in WHEN_SET.items()
              if settings.get(k, default) != default}
    if ident.get("swa_epochs"):
        ident["swa_lr"] = settings.get("swa_lr", 1e-4)
    return ident


def files_by_content(ident: dict) -> dict:
    """``ident`` with its teacher / init paths as ``file_identity`` (what a key holds)."""
    return {k: file_identity(v) if k in FILE_SETTINGS and v else v for k, v in ident.items()}


class SpecError(UserError, ValueError):
    """A sweep specification that cannot be read or run."""


def _train_fields() -> dict:
    from groupnet.models.train import TrainConfig
    return {f.name: f for f in fields(TrainConfig)
            if f.name not in ("variant", "dataset", "overrides")}


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def digest(obj, n: int = 12) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:n]


@dataclass(frozen=True)
class Point:
    """One network to train (or take trained) and build for every board of the sweep."""
    variant: str
    model: dict                 # resolved model options (defaults filled in), dataset included
    train: dict                 # training settings that decide the model (TRAIN_IDENTITY)
    checkpoint: str | None = None    # a given trained checkpoint (no training)
    label: str = ""

    @property
    def key(self) -> str:
        """Hash of what decides the trained model: resuming and reuse go by it."""
        return digest({"variant": self.variant, "model": self.model, "train": self.train})

    def as_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "variant": self.variant,
                "model": self.model, "train": self.train, "checkpoint": self.checkpoint}

    @classmethod
    def from_dict(cls, d: dict) -> "Point":
        return cls(d["variant"], d["model"], d["train"], d.get("checkpoint"), d.get("label", ""))


@dataclass
class Spec:
    path: Path
    name: str
    dataset: str
    train: dict                         # identity + free training settings
    points: list[Point]
    boards: list[str]
    fold: dict = field(default_factory=lambda: {"budget": 0.7})
    build_to: str = "estimates"
    simulate: dict = field(default_factory=lambda: {"points": "front", "frames": 4})
    reuse: list[str] = field(default_factory=list)
    search: dict | None = None
    space: list[dict] = field(default_factory=list)   # raw entries (search samples from them)
    verify: int = 0
    park: str | None = None

    @property
    def reuse_folders(self) -> list[str]:
        """Where trained checkpoints are taken from: ``reuse``, then the park folder."""
        return self.reuse + ([self.park] if self.park else [])

    @property
    def needs_vivado(self) -> bool:
        from groupnet.hw.steps import VIVADO_STEPS
        return self.build_to in VIVADO_STEPS

    def evaluation_key(self, point: Point, board: str) -> str:
        """One result row: a point built for a board with this folding and depth."""
        return digest({"point": point.key, "board": board, "fold": self.fold,
                       "build_to": self.build_to})


def file_identity(path: str | Path) -> str:
    """A teacher or init checkpoint as part of a point's key: its content, not where it
    lies."""
    t = Path(path)
    if not t.is_file():
        return f"{t.stem}:missing"
    return f"{t.stem}:{hashlib.sha256(t.read_bytes()).hexdigest()[:12]}"


def _fail(path: Path, where: str, msg: str) -> SpecError:
    return SpecError(f"{path}: {where}: {msg}")


def load_spec(path: str | Path) -> Spec:
    """Read and check a spec file; every point of its grid is resolved (variant and
    options known, values of the right kind), so that a typo fails before any work."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping of keys ({', '.join(sorted(TOP_KEYS))})")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise _fail(path, unknown[0], f"unknown key; keys: {', '.join(sorted(TOP_KEYS))}")
    from groupnet.models.data import DATASETS
    dataset = data.get("dataset", "fashion-mnist")
    if dataset not in DATASETS:
        raise _fail(path, "dataset", f"unknown dataset '{dataset}'; datasets: "
                                     f"{', '.join(DATASETS)}")
    train = _check_train(path, "train", data.get("train") or {}, require_epochs=True)
    boards = data.get("boards", ["pynq-z2"])
    boards = [boards] if isinstance(boards, str) else boards
    from groupnet.hw.boards import BOARDS
    if not isinstance(boards, list):
        raise _fail(path, "boards", "expected a list of board names ([]: train only)")
    for i, b in enumerate(boards):
        if b not in BOARDS:
            raise _fail(path, f"boards[{i}]", f"unknown board '{b}'; boards: "
                                              f"{', '.join(BOARDS)}")
    fold = _check_fold(path, data.get("fold", {"budget": 0.7}))
    build_to = data.get("build_to", "estimates")
    from groupnet.hw.steps import STEPS
    if build_to not in STEPS:
        raise _fail(path, "build_to", f"unknown step '{build_to}'; steps: {', '.join(STEPS)}")
    simulate = _check_simulate(path, data.get("simulate", {}))
    reuse = data.get("reuse", [])
    reuse = [reuse] if isinstance(reuse, str) else reuse
    if not isinstance(reuse, list) or not all(isinstance(r, str) for r in reuse):
        raise _fail(path, "reuse", "expected a list of folders")
    park = data.get("park")
    if park is not None and (not isinstance(park, str) or not park
                             or Path(park).is_absolute()):
        raise _fail(path, "park", "expected a folder relative to the repository "
                                  "(e.g. models/sweeps/NAME), committed with the sweep")
    space = data.get("space")
    if not isinstance(space, list) or not space:
        raise _fail(path, "space", "expected a non-empty list of grid entries "
                                   "({variant: NAME, OPTION: [values]} or {checkpoint: PATH})")
    search = data.get("search")
    if search is not None:
        search = _check_search(path, search)
    verify = data.get("verify", 0)
    if not isinstance(verify, int) or isinstance(verify, bool) or verify < 0:
        raise _fail(path, "verify", "expected a number of test images (0: no check)")
    spec = Spec(path=path, name=str(data.get("name") or path.stem), dataset=dataset,
                train=train, points=[], boards=boards, fold=fold, build_to=build_to,
                simulate=simulate, reuse=reuse, search=search, space=space, verify=verify,
                park=park)
    points: dict[str, Point] = {}
    for i, entry in enumerate(space):
        if search is not None:      # a search samples the space: check it, do not list it
            if isinstance(entry, dict) and "variant" in entry:
                variants, axes = entry_axes(spec, i, entry)
                make_point(spec, variants[0], {k: v[0] for k, v in axes.items()},
                           f"space[{i}]")
            continue
        for p in expand_entry(spec, i, entry):
            points.setdefault(p.key, p)
    spec.points = list(points.values())
    return spec


def select_points(spec: Spec, only: list[str]) -> Spec:
    """``spec`` with the points named in ``only`` (each a point's key or its label, as
    front.md and results.jsonl show them), in the spec's order; a name that is no point
    of the spec is an error naming the spec."""
    if spec.search:
        raise SpecError(f"{spec.path}: a search samples its points: only a grid's points "
                        "can be picked")
    names = {n for p in spec.points for n in (p.key, p.label)}
    unknown = [n for n in only if n not in names]
    if unknown:
        raise SpecError(f"{spec.path}: no point '{unknown[0]}'; points: "
                        + ", ".join(f"{p.label} ({p.key})" for p in spec.points))
    from dataclasses import replace
    return replace(spec, points=[p for p in spec.points if {p.key, p.label} & set(only)])


def _check_train(path: Path, where: str, train, require_epochs: bool = False) -> dict:
    if not isinstance(train, dict):
        raise _fail(path, where, "expected a mapping of training settings")
    known = _train_fields()
    for key, value in train.items():
        if key not in known:
            raise _fail(path, f"{where}.{key}", "not a training setting; settings: "
                                                f"{', '.join(sorted(known))}")
        _check_value(path, f"{where}.{key}", value, known[key].default)
    if require_epochs and "epochs" not in train:
        raise _fail(path, f"{where}.epochs", "missing (how long each point trains)")
    return dict(train)


def _check_value(path: Path, where: str, value, default) -> None:
    """Values take the type of the default (ints for ints, numbers for floats, ...)."""
    if default is None or value is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise _fail(path, where, f"{value!r} is not a {type(default).__name__}")


def _check_fold(path: Path, fold) -> dict:
    if not isinstance(fold, dict) or len(fold) != 1 or not set(fold) <= {"budget", "target_fps"}:
        raise _fail(path, "fold", "expected one of {budget: FRACTION} or {target_fps: FPS}")
    (key, value), = fold.items()
    if not isinstance(value, (int, float)) or value <= 0 or (key == "budget" and value > 1):
        raise _fail(path, f"fold.{key}", f"{value!r}: expected "
                    + ("a fraction of the board in (0, 1]" if key == "budget" else "FPS > 0"))
    return {key: float(value)}


def _check_simulate(path: Path, sim) -> dict:
    if sim in (None, False, "none"):
        return {"points": "none", "frames": 4}
    if not isinstance(sim, dict) or set(sim) - {"points", "frames"}:
        raise _fail(path, "simulate", "expected {points: none|front|all, frames: N}")
    points, frames = sim.get("points", "front"), sim.get("frames", 4)
    if points not in SIM_POINTS:
        raise _fail(path, "simulate.points", f"'{points}': one of {', '.join(SIM_POINTS)}")
    if not isinstance(frames, int) or frames < 2:
        raise _fail(path, "simulate.frames", f"{frames!r}: at least 2 (steady state needs two)")
    return {"points": points, "frames": frames}


def _check_search(path: Path, search) -> dict:
    if not isinstance(search, dict) or search.get("engine", "optuna") != "optuna":
        raise _fail(path, "search", "expected {engine: optuna, trials: N[, seed: S]}")
    trials = search.get("trials")
    if not isinstance(trials, int) or trials < 1:
        raise _fail(path, "search.trials", f"{trials!r}: a number of points >= 1")
    extra = set(search) - {"engine", "trials", "seed", "board"}
    if extra:
        raise _fail(path, f"search.{sorted(extra)[0]}", "unknown key; keys: engine, trials, "
                                                        "seed, board")
    return {"engine": "optuna", "trials": trials, "seed": int(search.get("seed", 0)),
            "board": search.get("board")}


def entry_axes(spec: Spec, i: int, entry) -> tuple[list[str], dict[str, list]]:
    """A grid entry's variants and its option axes (each a list of values), checked."""
    from groupnet.models import model_defaults
    from groupnet.models.registry import UnknownModelError
    where = f"space[{i}]"
    if not isinstance(entry, dict) or "variant" not in entry:
        raise _fail(spec.path, where, "expected {variant: NAME, OPTION: [values], ...} or "
                                      "{checkpoint: PATH}")
    variants = entry["variant"]
    variants = [variants] if isinstance(variants, str) else variants
    axes = {k: (v if isinstance(v, list) else [v]) for k, v in entry.items()
            if k not in ("variant", "untrained")}
    known_train = _train_fields()
    for v in variants:
        try:
            defaults = model_defaults(v)
        except UnknownModelError as err:
            raise _fail(spec.path, f"{where}.variant", str(err)) from None
        for key, values in axes.items():
            if not values:
                raise _fail(spec.path, f"{where}.{key}", "an empty list of values")
            if key in ("dataset", *FILE_SETTINGS):
                raise _fail(spec.path, f"{where}.{key}", f"one {key} per sweep: set it at "
                            "the top level" + (f" (train.{key})" if key != "dataset" else ""))
            if key in defaults:
                for value in values:
                    _check_value(spec.path, f"{where}.{key}", value, defaults[key])
            elif key in known_train:
                for value in values:
                    _check_value(spec.path, f"{where}.{key}", value, known_train[key].default)
            else:
                raise _fail(spec.path, f"{where}.{key}",
                            f"not an option of {v} ({', '.join(sorted(set(defaults) - {'dataset'}))}) "
                            "nor a training setting")
    return variants, axes


def make_point(spec: Spec, variant: str, values: dict, where: str = "") -> Point:
    """The point of ``variant`` with these option / training values."""
    from groupnet.models import model_defaults
    from groupnet.models.train import TrainConfig
    defaults = model_defaults(variant)
    model = {**defaults, **{k: v for k, v in values.items() if k in defaults},
             "dataset": spec.dataset}
    base = {f.name: f.default for f in fields(TrainConfig)}
    train_all = {**base, **spec.train, **{k: v for k, v in values.items() if k not in defaults}}
    train = train_identity(train_all)
    for key in FILE_SETTINGS:
        if train.get(key) and not Path(train[key]).is_file():
            raise _fail(spec.path, f"train.{key}", f"{key} {train[key]}: file not found")
    train = files_by_content(train)
    label = variant + "".join(f" {k}={v}" for k, v in sorted(values.items()))
    try:
        from groupnet.models import create_model
        create_model(variant, **model)
    except Exception as err:  # noqa: BLE001 - the model's own check of its options
        raise _fail(spec.path, where or "space", f"{label}: {err}") from None
    return Point(variant, model, train, label=label)


def expand_entry(spec: Spec, i: int, entry) -> list[Point]:
    if isinstance(entry, dict) and "checkpoint" in entry:
        return _checkpoint_points(spec, i, entry)
    variants, axes = entry_axes(spec, i, entry)
    untrained = entry.get("untrained", False)
    if not isinstance(untrained, bool):
        raise _fail(spec.path, f"space[{i}].untrained", "true or false")
    names = list(axes)
    out = []
    for v in variants:
        for combo in itertools.product(*(axes[n] for n in names)):
            p = make_point(spec, v, dict(zip(names, combo)), f"space[{i}]")
            if untrained:       # hardware only: random weights (seed 0), no accuracy
                p = Point(p.variant, p.model, {"untrained": True}, label=p.label + " (untrained)")
            out.append(p)
    return out


def _checkpoint_points(spec: Spec, i: int, entry: dict) -> list[Point]:
    from groupnet.models.checkpoint import read_checkpoint
    if set(entry) != {"checkpoint"}:
        raise _fail(spec.path, f"space[{i}]", "a checkpoint entry has only 'checkpoint'")
    pattern = entry["checkpoint"]
    paths = sorted(glob.glob(str(pattern))) if isinstance(pattern, str) else None
    if not paths:
        raise _fail(spec.path, f"space[{i}].checkpoint", f"no checkpoint matches {pattern!r}")
    out = []
    for p in paths:
        payload = read_checkpoint(p)
        ds = payload["config"].get("dataset", "fashion-mnist")
        if ds != spec.dataset:
            raise _fail(spec.path, f"space[{i}].checkpoint", f"{p} was trained on {ds}, the "
                                                             f"sweep is on {spec.dataset}")
        model = dict(payload["config"])
        # keyed by content: the same file moved or copied is the same point
        sha = hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16]
        out.append(Point(payload["variant"], model, {"checkpoint_sha256": sha},
                         checkpoint=str(p), label=Path(p).stem))
    return out
