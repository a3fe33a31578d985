"""Issue 30: structure (Group-Net) against value approximation (w1a2 / w2a2, ABC-Net) at
equal binary-op budgets: the sweep ``benchmarks/specs/issue30_budgets.yaml`` as tables.

Accuracy (validation and test, per seed) comes from the committed trainings in the spec's
``park`` folder (``models/sweeps/issue30-budgets/*.metrics.json``); LUT, FPS and BRAM18
(FINN's estimates, per board) from the sweep's result store when this machine has it
(``runs/explore/<name>/results.jsonl``, not committed: its columns are copied into the
results). Binary operations per image: the store's ``binary_macs``, else ``op_counts``.
The analysis is ``groupnet/explore/budgets.py``.

    python benchmarks/budgets.py [--store PATH] [--park FOLDER]

Writes ``benchmarks/results/budgets_fashion-mnist.{json,md}`` and one PNG per board
(``..._<board>.png``); docs/explore.md includes the md (``make results``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _rel(path: str | Path) -> str:
    """A path for a committed file: relative to the repository, else its name alone."""
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if ROOT in path.parents else path.name


def _macs(point) -> int:
    from groupnet.models import create_model
    from groupnet.models.groupnet import op_counts
    return op_counts(create_model(point.variant, **point.model))["binary"]


def collect(spec, park: Path, store: Path) -> tuple[list[dict], list[dict], int]:
    """One record per planned point (accuracy from its parked metrics, None when not
    trained), one per point and board built (the store's HW columns); store rows used."""
    from groupnet.explore.budgets import HW, family_of
    from groupnet.explore.store import read_records
    evals = [r for (kind, _), r in read_records(store).items() if kind == "eval"]
    points, hw, used, macs = [], [], 0, {}
    for p in spec.points:
        fam, seed = family_of(p.label), p.train["seed"]
        metrics = park / f"{p.variant}_{p.key}.metrics.json"
        m = json.loads(metrics.read_text()) if metrics.is_file() else {}
        if m and m["train_config"]["seed"] != seed:
            raise SystemExit(f"{_rel(metrics)}: seed {m['train_config']['seed']}, the spec "
                             f"says {seed}: not this point's training")
        rows = [r for r in evals if r.get("point") == p.key and r.get("board") in spec.boards]
        for r in rows:
            macs.setdefault(fam, r.get("binary_macs"))
        macs[fam] = macs.get(fam) or _macs(p)
        points.append({"family": fam, "variant": p.variant, "seed": seed, "point": p.key,
                       "binary_macs": macs[fam], "parked": metrics.name if m else None,
                       "val_accuracy": m.get("val_accuracy"),
                       "test_accuracy": m.get("test_accuracy"),
                       "protocol": m.get("protocol"), "train_seconds": m.get("train_seconds")})
        if m:          # a build of an older training of the point is not this one's
            rows = [r for r in rows if r.get("quality") == m["test_accuracy"]]
            used += len(rows)
            hw += [{"family": fam, "seed": seed, "point": p.key, "board": r["board"],
                    "test_accuracy": m["test_accuracy"],
                    **{k: r[k] for k in HW if k in r}} for r in rows]
    return points, hw, used


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "benchmarks" / "specs" / "issue30_budgets.yaml"))
    ap.add_argument("--store", help="the sweep's results.jsonl (default: "
                                    "runs/explore/<spec name>/results.jsonl)")
    ap.add_argument("--park", help="the parked trainings (default: the spec's park folder)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--name", default="budgets_fashion-mnist")
    args = ap.parse_args(argv)

    from groupnet.explore import load_spec
    from groupnet.explore.budgets import (board_rows, board_table, budget_table, paragraph,
                                          plot_board, summarise, verdicts)
    spec = load_spec(args.spec)
    if not (args.park or spec.park):
        raise SystemExit(f"{_rel(args.spec)}: no park folder (the spec's park:, or --park)")
    park = Path(args.park or ROOT / spec.park)
    store = Path(args.store or ROOT / "runs" / "explore" / spec.name / "results.jsonl")
    points, hw, used = collect(spec, park, store)
    rows = summarise(points)
    boards = board_rows(rows, hw)
    seeds = sorted({p["seed"] for p in points})
    done = sum(p["test_accuracy"] is not None for p in points)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = [f"Sweep `{_rel(args.spec)}`: {done} of {len(points)} points done. Accuracy: each "
          "finished training's own metrics (validation: the 5,000 held-out training images "
          "every choice is made on; test: the 10,000 test images, read once per model). "
          "The ranking below is on the test mean over seeds, for the report only.", "",
          paragraph(rows, len(points)), budget_table(rows, seeds)]
    for board, brows in boards.items():
        png = out / f"{args.name}_{board}.png"
        plot_board(hw, board, png)
        md += [f"**{board}** (FINN estimates, not place-and-routed; front: no other family is "
               "at least as accurate on the test mean, as small and as fast, and better in "
               f"one; picture: `{png.name}`)", "", board_table(brows)]
    if not boards:
        md.append("_No hardware columns: the sweep's result store was not found here._\n")
    (out / f"{args.name}.md").write_text("\n".join(md))
    (out / f"{args.name}.json").write_text(json.dumps({
        "sweep": spec.name, "spec": _rel(args.spec), "dataset": spec.dataset,
        # the spec's park folder when these are its files (the sweep's machine has them)
        "park": _rel(ROOT / spec.park if park.name == Path(spec.park or "").name else park),
        "planned": len(points), "done": done, "partial": done < len(points),
        "hardware": f"{used} rows of the sweep's result store (machine-local)",
        "families": rows, "verdicts": verdicts(rows), "boards": boards, "points": points,
        "builds": hw}, indent=1) + "\n")
    print("\n".join(md))
    print(f"wrote {_rel(out / args.name)}.{{md,json}} + {len(boards)} PNG")
    return 0


if __name__ == "__main__":
    sys.exit(main())
