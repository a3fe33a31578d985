"""Publish a trained checkpoint into the zoo: ``groupnet zoo add CHECKPOINT --name NAME``.

A checkpoint of ``groupnet train`` (``runs/X/VARIANT.pt``, its ``metrics.json`` beside),
of an explore point (``.../points/KEY/train/VARIANT.pt``, or its park copy
``VARIANT_KEY.pt`` with ``VARIANT_KEY.metrics.json``) or the last-epoch model a
weight-averaged run keeps beside its average (``VARIANT_last.pt``: its metrics derived from
the run's) becomes ``models/zoo/NAME.pt`` (compact: binary weights as int8 signs) with
``NAME.metrics.json`` beside it, and ``models/zoo/index.json`` is regenerated.

``NAME`` is the index name, timm-style: ``VARIANT.TAG_sSEED`` (``bnn_cnv_h.kd_s1``) or
``VARIANT.sSEED``; variant and seed must be the checkpoint's. The teacher and the start
of a fine-tune (``init``) must be zoo models already: the published metrics name them as
``models/zoo/FILE`` (found by content: the zoo file, or the checkpoint it was published
from, ``source_sha256``), so a recipe refers to index names only, and no record holds a
path of the machine it was trained on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .zoo_index import INDEX, ZOO, ZooError, build_index, sha256

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^(?P<variant>\w+?)\.(?:(?P<tag>\w+)_)?s(?P<seed>\d+)$")


def last_weights_metrics(m: dict) -> dict:
    """The metrics of a weight-averaged run's last-epoch model (``VARIANT_last.pt``: the
    same run without the averaging): its own test scores, and under ``swa`` that it is that
    model and what the average scored. Scores of the average it has no counterpart for
    (per-class IoU, ...) are left out."""
    swa, out = m["swa"], {k: v for k, v in m.items() if not k.startswith("test_")}
    out["test_images"] = m["test_images"]
    for k in ("accuracy", "miou", "map50", "map"):
        if swa.get(f"last_weights_test_{k}") is not None:
            out[f"test_{k}"] = swa[f"last_weights_test_{k}"]
    out["history"] = [*m["history"][:-1],
                      {**m["history"][-1], "test_accuracy": out["test_accuracy"]}]
    out["swa"] = {"model": "last epoch", "epochs": swa["epochs"], "lr": swa["lr"],
                  "snapshots": swa["snapshots"]} | {
        f"averaged_test_{k}": m[f"test_{k}"] for k in ("accuracy", "miou", "map50", "map")
        if m.get(f"test_{k}") is not None}
    return out


def run_metrics(ckpt: Path, payload: dict) -> dict:
    """The metrics a trained checkpoint was recorded with (see the module's docstring)."""
    beside = ckpt.with_name(ckpt.stem + ".metrics.json")
    run = ckpt.with_name("metrics.json")
    if beside.is_file():
        return json.loads(beside.read_text())
    if not run.is_file():
        raise ZooError(f"{ckpt}: no metrics beside it ({beside.name} or metrics.json): "
                       "publish a finished run's checkpoint (groupnet train, groupnet explore)")
    m = json.loads(run.read_text())
    if payload.get("metrics", {}).get("swa_last_weights"):
        if not m.get("swa"):
            raise ZooError(f"{ckpt}: a last-epoch model, but {run} records no weight averaging")
        return last_weights_metrics(m)
    return m


def check_name(name: str, metrics: dict, ckpt: Path) -> None:
    m = NAME.match(name)
    variant, seed = metrics["variant"], int((metrics.get("train_config") or {}).get("seed", 0))
    example = f"{variant}.TAG_s{seed}"
    if not m:
        raise ZooError(f"--name {name}: not an index name VARIANT.TAG_sSEED (for {ckpt}: "
                       f"{example}, e.g. {variant}.kd_s{seed})")
    if (m["variant"], int(m["seed"])) != (variant, seed):
        raise ZooError(f"--name {name}: {ckpt} is seed {seed} of {variant}: name it {example}")


def _in_zoo(path: str, zoo: Path, key: str, ckpt: Path) -> str:
    """A teacher / init checkpoint as the zoo file of the same content (or name)."""
    p = Path(path) if Path(path).is_absolute() else ROOT / path
    if not p.is_file():
        p = Path(path)
    if p.is_file():                     # the zoo file, or the zoo copy of that checkpoint
        digest = sha256(p)
        same = [f for f in sorted(zoo.glob("*.pt")) if digest in (sha256(f), _source(f))]
    else:                               # recorded on another machine: the zoo's copy
        same = [f for f in [zoo / Path(path).name] if f.is_file()]
    if not same:
        raise ZooError(f"{ckpt}: its {key} {path} is not in {zoo}: publish it first "
                       f"(groupnet zoo add {path} --name ...), then this one")
    where = same[0]
    return (where.relative_to(ROOT) if ROOT in where.parents
            else where.relative_to(zoo.parent)).as_posix()


def _source(zoo_file: Path) -> str | None:
    """The SHA-256 of the checkpoint a zoo file was published from (``source_sha256``)."""
    beside = zoo_file.with_name(zoo_file.stem + ".metrics.json")
    return json.loads(beside.read_text()).get("source_sha256") if beside.is_file() else None


def _absolute(obj, where: str = "") -> tuple[str, str] | None:
    """(key, value) of the first absolute path in a record, None when it has none."""
    if isinstance(obj, dict):
        return next((hit for k, v in obj.items() if (hit := _absolute(v, f"{where}.{k}"))),
                    None)
    if isinstance(obj, list):
        return next((hit for i, v in enumerate(obj) if (hit := _absolute(v, f"{where}[{i}]"))),
                    None)
    if isinstance(obj, str) and obj.startswith("/") and " " not in obj and "\n" not in obj:
        return where.lstrip("."), obj
    return None


def zoo_metrics(ckpt: Path, payload: dict, zoo: Path) -> dict:
    """The run's metrics as the zoo keeps them: paths relative, teacher and init as zoo
    files (one line naming the key when a machine path is left)."""
    from groupnet.paths import portable
    m = portable(run_metrics(ckpt, payload), ROOT)
    if m.get("stopped_early"):
        raise ZooError(f"{ckpt}: an unfinished run (stopped early): finish it with "
                       "`groupnet train ... --resume` first")
    if m.get("variant") != payload["variant"]:
        raise ZooError(f"{ckpt}: a {payload['variant']} checkpoint, but the metrics beside it "
                       f"are of {m.get('variant')}: not the run that wrote them")
    tc = m.get("train_config") or {}
    for key in ("teacher", "init"):
        if tc.get(key):
            tc[key] = _in_zoo(tc[key], zoo, key, ckpt)
    if m.get("init"):
        m["init"]["checkpoint"] = tc.get("init") or _in_zoo(m["init"]["checkpoint"], zoo,
                                                            "init", ckpt)
    m["source_sha256"] = sha256(ckpt)    # a run distilled from the original finds this copy
    hit = _absolute(m)
    if hit:
        raise ZooError(f"{ckpt}: its metrics record the machine path {hit[1]} ({hit[0]}); "
                       "the zoo keeps relative paths only: rewrite it in the metrics file")
    return m


def publish(checkpoint: str | Path, name: str, zoo: Path = ZOO, force: bool = False) -> dict:
    """Copy ``checkpoint`` into ``zoo`` as ``NAME.pt`` with its metrics beside and
    regenerate the zoo's ``index.json``; returns the new index entry. An entry of that
    name is replaced only with ``force``."""
    from .checkpoint import compact_checkpoint, read_checkpoint
    ckpt, zoo = Path(checkpoint), Path(zoo)
    payload = read_checkpoint(ckpt)
    metrics = zoo_metrics(ckpt, payload, zoo)
    check_name(name, metrics, ckpt)
    index = zoo / INDEX.name
    old = [e for e in (json.loads(index.read_text()) if index.is_file() else [])
           if e["name"] == name]
    target = zoo / f"{name}.pt"
    if (old or target.exists()) and not force:
        where = zoo / old[0]["file"] if old else target
        raise ZooError(f"zoo model {name} exists ({where}): pass --force to replace it, or "
                       "choose another --name")
    for e in old:
        (zoo / e["file"]).unlink(missing_ok=True)
        (zoo / f"{Path(e['file']).stem}.metrics.json").unlink(missing_ok=True)
    kept = payload.get("metrics") or {}
    compact_checkpoint(ckpt, target, metrics={**kept, **{k: metrics[k] for k in kept
                                                          if k in metrics}})
    target.with_name(f"{name}.metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    entries = build_index(zoo)
    index.write_text(json.dumps(entries, indent=1) + "\n")
    return next(e for e in entries if e["name"] == name)
