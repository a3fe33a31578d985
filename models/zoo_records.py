"""What a zoo model's whole recipe scored and cost: the rows of the result tables
(``benchmarks/zoo_table.py``, ``benchmarks/task_table.py``), read from the zoo index and the
metrics each checkpoint keeps beside it.

A fine-tune's row counts its whole chain (the parent's epochs and train time, and the
parent's parent's, ...: ``init.stages`` is 16, 4, 4 for a model fine-tuned 5 epochs from
one fine-tuned 4 epochs from a 16-epoch model); ``schedule_note`` says in words how its
last stage trained.
"""

from __future__ import annotations

import fnmatch
import statistics
from pathlib import Path

from .zoo_index import ZOO, ZooError, load_index, metrics_of


def entries_of(configs: list[str], entries: list[dict]) -> list[dict]:
    """The index entries of ``configs`` (shell patterns allowed), in that order, each
    config's seeds in seed order."""
    out: list[dict] = []
    for pattern in configs:
        found = sorted((e for e in entries if fnmatch.fnmatch(e["config"], pattern)
                        and e not in out), key=lambda e: (e["config"], e["recipe"]["seed"]))
        if not found:
            raise ZooError(f"no zoo model of configuration '{pattern}' in the index "
                           "(`groupnet zoo list` names them)")
        out += found
    return out


def _init_of(entry: dict, by_name: dict[str, dict], zoo: Path) -> dict | None:
    """A fine-tune's parent: its name, and its whole chain's epochs (``stages``),
    accuracy, learning rate and train time."""
    name = entry["recipe"]["parent"]
    if not name:
        return None
    parent = by_name.get(name)
    if parent is None:
        raise ZooError(f"{entry['name']}: its parent {name} is not in the zoo index: its "
                       "row cannot count the whole recipe")
    s = metrics_of(zoo / parent["file"])
    before = _init_of(parent, by_name, zoo) or {"stages": [], "train_seconds": 0.0,
                                                "train_cpu_seconds": 0.0}
    stages = before["stages"] + [len(s["history"])]
    return {"name": name, "epochs": sum(stages), "stages": stages,
            "lr": s["train_config"]["lr"], "test_accuracy": s["test_accuracy"],
            "train_seconds": s["train_seconds"] + before["train_seconds"],
            "train_cpu_seconds": (s.get("train_cpu_seconds", s["train_seconds"])
                                  + before["train_cpu_seconds"])}


def row(entry: dict, zoo: Path = ZOO, by_name: dict[str, dict] | None = None) -> dict:
    """One table row of a zoo model: its shape, binary MACs per image, recipe, scores and
    whole-recipe cost (``by_name``: the index by name, read from ``zoo`` when not given)."""
    from . import create_model, model_defaults
    from .groupnet import op_counts
    by_name = by_name if by_name is not None else {e["name"]: e for e in load_index(zoo)}
    m = metrics_of(zoo / entry["file"])
    cfg = {**model_defaults(entry["variant"]), **entry["options"]}
    tcfg, init, k = m.get("train_config") or {}, _init_of(entry, by_name, zoo), cfg.get("k", 1)
    swa, fp = m.get("swa"), entry["variant"].startswith("fp_")
    model = None if fp else create_model(entry["variant"], **entry["options"],
                                         dataset=entry["dataset"])
    return {
        "name": entry["name"], "config": entry["config"], "variant": entry["variant"],
        "k": k, "width": cfg.get("width"), "agg_bits": cfg.get("agg_bits") if k > 1 else None,
        "precision": "fp" if fp else "binary",
        "binary_macs": None if fp else op_counts(model)["binary"],
        "seed": entry["recipe"]["seed"], "distilled": entry["recipe"]["teacher"] is not None,
        "epochs": len(m["history"]) + (init["epochs"] if init else 0),
        "init": init, "lr": tcfg.get("lr"),
        "swa": swa and {key: v for key, v in swa.items() if key != "bn_seconds"},
        "test_accuracy": m["test_accuracy"], "test_miou": m.get("test_miou"),
        "test_map50": m.get("test_map50"), "test_map": m.get("test_map"),
        "test_images": m["test_images"],
        "train_minutes": (m["train_seconds"] + (init["train_seconds"] if init else 0)) / 60,
        "train_cpu_minutes": (m.get("train_cpu_seconds", m["train_seconds"])
                              + (init["train_cpu_seconds"] if init else 0)) / 60,
        # which split chose the model (models/train.py); runs from before the validation
        # protocol record none: their checks were on test images
        "protocol": m.get("protocol", "test-checked"),
        "device": m["device"], "threads": m["torch_threads"]}


def seeds_row(config: str, rows: list[dict]) -> dict:
    """One row of the zoo summary: a configuration's seeds (their :func:`row` s), accuracy
    mean and spread, train time the mean."""
    first, accs = rows[0], [r["test_accuracy"] for r in rows]
    return {"config": config, "variant": first["variant"],
            **{k: first[k] for k in ("k", "width", "agg_bits", "precision", "distilled",
                                     "epochs", "init", "lr", "swa", "protocol",
                                     "binary_macs")},
            "swa_seeds": ([r["swa"] for r in rows] if first["swa"] and len(rows) > 1
                          else None),
            "seeds": [r["seed"] for r in rows],
            "accuracy_mean": statistics.mean(accs), "accuracy_min": min(accs),
            "accuracy_max": max(accs), "accuracies": accs,
            "train_cpu_minutes": statistics.mean(r["train_cpu_minutes"] for r in rows)}


def task_row(entry: dict, task: str, zoo: Path = ZOO,
             by_name: dict[str, dict] | None = None) -> dict:
    """One row of a segmentation or detection table (``task``): the model's shape, cost and
    recipe, its quality (mIoU and pixel accuracy; mAP@0.5 and COCO mAP) and the check
    metric of its last epochs (:func:`history`)."""
    r = row(entry, zoo, by_name)
    out = {"name": entry["config"], **{k: r[k] for k in (
        "variant", "k", "precision", "epochs", "seed", "distilled", "test_images",
        "binary_macs", "train_cpu_minutes")}}
    if task == "detection":
        out |= {"quality": r["test_map50"], "map": r["test_map"]}
    else:
        out |= {"quality": r["test_miou"], "pixel_accuracy": r["test_accuracy"]}
    out["checks"] = history(entry, "check_map50" if task == "detection" else "check_miou",
                            zoo=zoo)
    return out


def history(entry: dict, key: str, last: int = 5, zoo: Path = ZOO) -> list[float]:
    """The per-epoch check metric ``key`` of the model's last ``last`` checked epochs: how
    far one run's final number could have landed elsewhere."""
    return [h[key] for h in metrics_of(zoo / entry["file"])["history"] if key in h][-last:]


def recipe_epochs(init: dict) -> str:
    """The epochs of a fine-tune's starting model: '16', or '16+4' when it was itself
    fine-tuned (a row written before stages were kept: its epoch count)."""
    return "+".join(map(str, init.get("stages", [init["epochs"]])))


def _counterpart(swa: dict) -> str:
    """The score of a weight-averaged run's other model: the last epoch's own weights for
    the average, the average for the last-epoch model."""
    key = "averaged_test_" if swa.get("model") == "last epoch" else "last_weights_test_"
    return (f"mAP@0.5 {swa[key + 'map50']:.3f}" if swa.get(key + "map50") is not None else
            f"mIoU {swa[key + 'miou']:.3f}" if swa.get(key + "miou") is not None else
            f"{100 * swa[key + 'accuracy']:.2f}%")


def schedule_note(row: dict) -> str:
    """How a fine-tune trained: a new one-cycle schedule, or weight averaging. A row of
    several seeds (``swa_seeds``, ``seeds``: the zoo summary) names each seed's other model."""
    swa, lr = row.get("swa"), row.get("lr")
    peak = f" with peak LR {lr:g}" if lr is not None else ""
    if not swa:
        return f"a new one-cycle schedule{peak}"
    swas = row.get("swa_seeds") or [swa]
    other = ", ".join(_counterpart(s) for s in swas)
    if len(swas) > 1:
        other = f"seeds {', '.join(map(str, row['seeds']))}: {other}"
    if swa.get("model") == "last epoch":
        return (f"constant LR {swa['lr']:g}, the last epoch's own weights (the same run's "
                f"weight average over {swa['snapshots']} epochs: {other})")
    whole = swa["epochs"] == row["epochs"] - (row.get("init") or {}).get("epochs", 0)
    return (("" if whole else f"a one-cycle schedule{peak}, then ")
            + f"stochastic weight averaging: constant LR {swa['lr']:g}, the model the mean "
            f"of the weights at the ends of {swa['snapshots']} epochs with batch-norm "
            f"statistics recomputed on the {swa['bn_images']:,} training images (the last "
            f"epoch's own weights: {other})")
