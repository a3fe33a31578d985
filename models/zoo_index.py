"""The model zoo as data: ``models/zoo/index.json``, one entry per committed checkpoint.

An entry says what a checkpoint is without parsing its file name::

    name        timm-style ``variant.tag``: the recipe's tag and the seed
                (``groupnet_cnv_k2.agg4_kd_ft8_swa5_last_s1``)
    config      the name without its seed: the seeds of one recipe share it
    file        the checkpoint, relative to ``models/zoo/``; its ``sha256``
    aliases     the old names (the file's stem, when it is not the name), which keep
                working for one release
    variant, options, dataset
    recipe      seed, epochs and learning rate of the last stage, the teacher and the
                parent (fine-tuning's start) as index names, weight averaging, and the
                total epochs of the whole chain
    chosen_on   "val" (the validation protocol: per-epoch checks on held-out training
                images, test read once) or "test checks" (the zoo before it)
    metrics     the test (and validation) figures the run recorded

``python -m groupnet.models.zoo_index --write`` regenerates the index from the checkpoints and
their ``NAME.metrics.json`` (a test fails when it is out of date); ``groupnet zoo list``
and ``groupnet zoo show NAME`` read it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

from groupnet.errors import UserError

ZOO = Path(__file__).resolve().parent / "zoo"
INDEX = ZOO / "index.json"
QUALITY = ("test_accuracy", "test_miou", "test_map50", "test_map", "val_accuracy",
           "val_miou", "val_map50", "test_images", "val_images")


class ZooError(UserError, KeyError):
    def __str__(self) -> str:
        return self.args[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def metrics_of(pt: Path) -> dict:
    beside = pt.with_name(pt.stem + ".metrics.json")
    if beside.is_file():
        return json.loads(beside.read_text())
    from .checkpoint import read_checkpoint      # older zoo files: the payload's metrics
    payload = read_checkpoint(pt)
    return {**payload.get("metrics", {}), "variant": payload["variant"],
            "model_config": {"variant": payload["variant"], **payload["config"]}}


def _tag(stem: str, variant: str, seed: int) -> tuple[str, str]:
    """(config, name) of a zoo file: a file named by its index name (``groupnet zoo
    add``: ``VARIANT.TAG_sSEED.pt``), or an older file's stem without the variant and its
    seed token (the one place names are read: the migration from names to the index)."""
    if stem.startswith(variant + "."):
        return re.sub(r"[._]s\d+$", "", stem), stem
    rest = stem[len(variant):].strip("_").split("_") if stem.startswith(variant) else [stem]
    tag = "_".join(t for t in rest if t and not (t.startswith("seed") and t[4:].isdigit()))
    config = f"{variant}.{tag}" if tag else variant
    return config, f"{variant}.{tag + '_' if tag else ''}s{seed}"


def _entry(pt: Path, names: dict[str, str]) -> dict:
    from . import model_defaults
    m = metrics_of(pt)
    tc = m.get("train_config") or {}
    mc = dict(m.get("model_config") or {})
    variant = mc.pop("variant", None) or m["variant"]
    dataset = mc.pop("dataset", m.get("dataset", "fashion-mnist"))
    defaults = model_defaults(variant)
    options = {k: v for k, v in mc.items() if defaults.get(k) != v}
    seed = int(tc.get("seed", 0))
    config, name = _tag(pt.stem, variant, seed)

    def ref(path: str | None) -> str | None:
        return names.get(Path(path).stem, Path(path).name) if path else None
    epochs = tc.get("epochs", m.get("epochs"))
    total = epochs + (m.get("init") or {}).get("epochs", 0) if epochs else None
    recipe = {"seed": seed, "epochs": epochs, "lr": tc.get("lr"),
              "teacher": ref(tc.get("teacher")), "parent": ref(tc.get("init")),
              "swa_epochs": tc.get("swa_epochs") or 0,
              "weights": ("last epoch" if (m.get("swa") or {}).get("model") == "last epoch"
                          else "weight average" if tc.get("swa_epochs") else "last epoch"),
              "total_epochs": total}
    protocol = m.get("protocol") or "test-checked"
    return {"name": name, "config": config, "file": pt.name, "sha256": sha256(pt),
            "aliases": [pt.stem] if pt.stem != name else [], "variant": variant, "options": options,
            "dataset": dataset, "recipe": recipe,
            "chosen_on": "val" if protocol == "validation" else "test checks",
            "metrics": {k: m[k] for k in QUALITY if m.get(k) is not None}}


def build_index(zoo: Path = ZOO) -> list[dict]:
    """The index of every checkpoint in ``zoo`` (parents before their fine-tunes)."""
    pts = sorted(zoo.glob("*.pt"))
    names = {}
    for pt in pts:                      # names first: recipes refer to each other
        m = metrics_of(pt)
        variant = (m.get("model_config") or {}).get("variant") or m["variant"]
        names[pt.stem] = _tag(pt.stem, variant, int((m.get("train_config") or {})
                                                    .get("seed", 0)))[1]
    entries = [_entry(pt, names) for pt in pts]
    # a fine-tune's chain: its parent's total epochs before its own
    by_name = {e["name"]: e for e in entries}
    for e in entries:
        chain, parent = e["recipe"]["epochs"] or 0, e["recipe"]["parent"]
        while parent in by_name:
            chain += by_name[parent]["recipe"]["epochs"] or 0
            parent = by_name[parent]["recipe"]["parent"]
        e["recipe"]["total_epochs"] = chain or None
    return entries


def load_index(zoo: Path = ZOO) -> list[dict]:
    index = Path(zoo) / INDEX.name
    if not index.is_file():
        raise ZooError(f"{index}: no zoo index; write it with `python -m groupnet.models.zoo_index "
                       "--write`")
    return json.loads(index.read_text())


def find(name: str) -> dict:
    """The entry of ``name`` (an index name, or an old name: a warning line says the new
    one)."""
    entries = load_index()
    for e in entries:
        if e["name"] == name:
            return e
    for e in entries:
        if name in e["aliases"]:
            print(f"groupnet zoo: '{name}' is an old name: use '{e['name']}' (the old names "
                  "go in the next release)", file=sys.stderr)
            return e
    import difflib
    close = difflib.get_close_matches(name, [e["name"] for e in entries], n=4, cutoff=0.7)
    raise ZooError(f"no zoo model '{name}'" + (f"; did you mean {', '.join(close[:4])}?"
                                               if close else "; `groupnet zoo list` shows "
                                               "them"))


def by_file(stem: str) -> dict | None:
    """The entry of the checkpoint ``models/zoo/<stem>.pt`` (None: not in the zoo)."""
    return next((e for e in (load_index() if INDEX.is_file() else [])
                 if e["file"] == f"{stem}.pt"), None)


def config_of(run_name: str) -> str:
    """The configuration a run is a seed of: a zoo model's ``config``; a run not in the zoo
    yet: its name without ``_seedN``, which sits before a recipe's suffix (``x_kd_seed1_ft8``
    is a seed of ``x_kd_ft8``)."""
    entry = by_file(run_name)
    return entry["config"] if entry else re.sub(r"_seed\d+(?=_|$)", "", run_name)


def checkpoint(name: str) -> Path:
    """The checkpoint file of an index (or old) name."""
    return ZOO / find(name)["file"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="regenerate or check models/zoo/index.json")
    ap.add_argument("--write", action="store_true", help="write the index")
    args = ap.parse_args(argv)
    text = json.dumps(build_index(), indent=1) + "\n"
    if args.write:
        INDEX.write_text(text)
        print(f"{INDEX.name}: {len(json.loads(text))} models")
        return 0
    same = INDEX.is_file() and INDEX.read_text() == text
    print("index up to date" if same else "index out of date: run with --write")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
