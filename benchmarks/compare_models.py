"""Are two trained classifiers really different? Their predictions on the full test set,
side by side: accuracy on the whole set, on the first ``--check`` images (the subset that
training checks after each epoch) and on the rest, and for every pair the images they
disagree on and an exact McNemar test (two-sided binomial on the images exactly one of the
two gets right). A difference of a few images between fine-tunes is noise unless p is small.

    python benchmarks/compare_models.py models/zoo/a.pt models/zoo/b.pt --name cmp_ab

Writes ``benchmarks/results/<name>.{json,md}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: under 'the two models are equally accurate', each of
    the ``only_a + only_b`` discordant images is a fair coin."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def compare(names: list[str], preds: list[np.ndarray], labels: np.ndarray,
            check: int) -> dict:
    right = [p == labels for p in preds]
    models = [{"name": n, "accuracy": float(r.mean()), "correct": int(r.sum()),
               "check_accuracy": float(r[:check].mean()),
               "rest_accuracy": float(r[check:].mean()) if len(r) > check else None}
              for n, r in zip(names, right)]
    pairs = []
    for i, j in itertools.combinations(range(len(names)), 2):
        only_a = int((right[i] & ~right[j]).sum())
        only_b = int((right[j] & ~right[i]).sum())
        pairs.append({"a": names[i], "b": names[j],
                      "disagree": int((preds[i] != preds[j]).sum()),
                      "only_a": only_a, "only_b": only_b,
                      "p_mcnemar": mcnemar_exact(only_a, only_b)})
    return {"images": int(len(labels)), "check": check, "models": models, "pairs": pairs}


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def to_markdown(res: dict) -> str:
    n, c = res["images"], res["check"]
    lines = [f"| model | test accuracy ({n}) | first {c} (training's check) | "
             f"other {n - c} |", "|---|---|---|---|"]
    for m in res["models"]:
        rest = f"{100 * m['rest_accuracy']:.2f}%" if m["rest_accuracy"] is not None else "-"
        lines.append(f"| `{m['name']}` | {100 * m['accuracy']:.2f}% ({m['correct']}) | "
                     f"{100 * m['check_accuracy']:.2f}% | {rest} |")
    lines += ["", "| pair (a / b) | predictions differ | only a right | only b right | "
              "McNemar p (exact) |", "|---|---|---|---|---|"]
    for p in res["pairs"]:
        lines.append(f"| `{p['a']}` / `{p['b']}` | {p['disagree']} | {p['only_a']} | "
                     f"{p['only_b']} | {_p(p['p_mcnemar'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="trained classifier checkpoints (.pt)")
    ap.add_argument("--name", required=True, help="results file name (no extension)")
    ap.add_argument("--check", type=int, default=None,
                    help="size of the leading subset training checks each epoch (default: "
                         "training's own, TrainConfig.eval_subset)")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    if len(args.checkpoints) < 2:
        ap.error("give at least two checkpoints to compare")
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.data import load_dataset
    from groupnet.models.train import TrainConfig, evaluate
    check = args.check or TrainConfig.eval_subset

    names, preds, dataset = [], [], None
    for path in map(Path, args.checkpoints):
        model, payload = load_checkpoint(path)
        ds = payload["config"].get("dataset")
        if dataset is not None and ds != dataset:
            raise SystemExit(f"{path}: trained on '{ds}', the others on '{dataset}': "
                             "compare models of one dataset")
        if dataset is None:
            dataset = ds
            images, labels = load_dataset(ds, "test", args.data_dir)
        res = evaluate(model, images, labels, progress=True)
        print(f"{path.stem}: {100 * res['accuracy']:.2f}%", file=sys.stderr)
        names.append(path.stem)
        preds.append(np.asarray(res["predictions"]))
    res = {"dataset": dataset, **compare(names, preds, labels, check)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(res, indent=2) + "\n")
    md = to_markdown(res)
    (RESULTS / f"{args.name}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
