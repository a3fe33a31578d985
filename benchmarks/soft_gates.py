"""Soft-gated connections between groups: accuracy and hardware cost, with and without.

Reads two training runs made with the same recipe (the plain variant and its ``_sg``
twin; ``RUNS/VARIANT/`` each, as ``groupnet train -o RUNS/VARIANT`` leaves it), and for
each: the full-test-set accuracy per epoch, the learned gate levels, and the hardware of its final checkpoint (export, bit-exactness of the export,
``groupnet build`` to FINN estimates with --verify on real images, HW layer counts,
estimated LUT/BRAM/FPS). Writes ``benchmarks/results/soft_gates.{json,md}``.

    groupnet train groupnet_cnv_s_k4 --epochs 4 --no-validation \\
        -o runs/recipe_pilot/groupnet_cnv_s_k4
    groupnet train groupnet_cnv_s_k4_sg --epochs 4 --no-validation \\
        -o runs/recipe_pilot/groupnet_cnv_s_k4_sg
    python benchmarks/soft_gates.py --runs runs/recipe_pilot

(the measured runs came from ``benchmarks/train_zoo.py --table recipe_pilot``, the
training script of the time, with the same settings)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIR = ["groupnet_cnv_s_k4", "groupnet_cnv_s_k4_sg"]


def gates(model) -> list:
    """Per gated group, each branch's gate."""
    from groupnet.models.blocks import Group
    return [group.gates for group in model.modules()
            if isinstance(group, Group) and group.gates]


def gate_levels(model) -> list[list[int]]:
    """Per gated group, each branch's gate level n (g = n / LEVELS)."""
    return [[int(g.level().round()) for g in group] for group in gates(model)]


def gate_thetas(model) -> list[list[float]]:
    """Per gated group, each branch's learned gate parameter (g = sigmoid(theta))."""
    return [[round(float(g.theta), 4) for g in group] for group in gates(model)]


def hardware(variant: str, checkpoint: Path, work: Path, images) -> dict:
    """Export, check the export, build to estimates with --verify; the numbers of the build."""
    from groupnet.hw.build import Build, BuildConfig, run_build
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.export import export_qonnx, verify_export

    model, _ = load_checkpoint(checkpoint)
    onnx = export_qonnx(model, work / f"{variant}.onnx", force=True)
    export = verify_export(onnx, model, images)
    out = work / f"build_{variant}"
    status = run_build(BuildConfig(model=str(onnx), out=str(out), force=True, verify=True,
                                   to_step="estimates"), images[:20], progress=False)
    build = Build.open(out)
    verified, est = build.report("verification.json"), build.estimates()
    ops = Counter(n.op_type.rsplit("_", 1)[0] for n in build.dataflow().graph.node)
    return {"gate_levels": gate_levels(model), "gate_thetas": gate_thetas(model),
            "export_bit_exact": export["bit_exact"],
            "export_images": export["n"], "build_state": status["state"],
            "build_bit_exact": all(v["bit_exact"] for v in verified.values()),
            "layers": dict(sorted(ops.items())), "lut": est["lut"], "bram18": est["bram18"],
            "fps": est["fps"], "board": est["board"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(ROOT / "runs" / "recipe_pilot"),
                    help="folder holding both runs, one folder per variant")
    ap.add_argument("--variants", nargs=2, default=PAIR, metavar=("PLAIN", "GATED"))
    ap.add_argument("--work", default=str(ROOT / "runs" / "soft_gates_hw"))
    ap.add_argument("--verify-images", type=int, default=100)
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()

    from groupnet.models.data import load_dataset
    images = load_dataset("fashion-mnist", "test")[0][:args.verify_images]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in args.variants:
        run = Path(args.runs) / variant
        metrics = json.loads((run / "metrics.json").read_text())
        rows.append({"variant": variant, "epochs": len(metrics["history"]),
                     "test_accuracy": metrics["test_accuracy"],
                     "test_images": metrics["test_images"],
                     # per epoch: the 2,000-image check, the last one the whole test set
                     "accuracy_per_epoch": [h.get("check_accuracy", h.get("test_accuracy"))
                                            for h in metrics["history"]],
                     "gate_lr_scale": metrics["train_config"].get("gate_lr_scale", 1.0),
                     "train_minutes": metrics["train_seconds"] / 60,
                     **hardware(variant, run / f"{variant}.pt", work, images)})
        print(json.dumps(rows[-1]), flush=True)

    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    (results / "soft_gates.json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    lines = ["| variant | epochs | test accuracy (per-epoch checks) | gate learning rate | "
             "gate levels n (g = n/2) | max abs theta | "
             "export / build bit-exact | ElementwiseAdd / Thresholding / Pool / SWG | "
             "LUT | BRAM18 | FPS (est.) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        per_epoch = ", ".join(f"{100 * a:.2f}" for a in r["accuracy_per_epoch"])
        ops = r["layers"]
        thetas = [abs(t) for group in r["gate_thetas"] for t in group]
        max_theta = f"{max(thetas):.3f}" if thetas else "-"
        gate_lr = f"{r['gate_lr_scale']:g}x the weights'" if r["gate_levels"] else "-"
        lines.append(
            f"| `{r['variant']}` | {r['epochs']} | {100 * r['test_accuracy']:.2f}% "
            f"({per_epoch}) | "
            f"{gate_lr} | "
            f"{r['gate_levels'] or '-'} | "
            f"{max_theta} | "
            f"{r['export_bit_exact']} / {r['build_bit_exact']} | "
            f"{ops.get('ElementwiseAdd', 0)} / {ops.get('Thresholding', 0)} / "
            f"{ops.get('Pool', 0)} / {ops.get('ConvolutionInputGenerator', 0)} | "
            f"{r['lut']} | {r['bram18']} | {r['fps']:.0f} |")
    (results / "soft_gates.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(r["export_bit_exact"] and r["build_bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
