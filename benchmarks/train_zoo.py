"""Train the model-zoo table: accuracy on the full Fashion-MNIST test set, training time.

Trains each variant with the same recipe, in parallel worker processes (threads split
between them), then writes ``benchmarks/results/accuracy.{json,md}`` and copies each final
checkpoint to ``models/zoo/<variant>.pt``. Re-running resumes unfinished runs.

    python benchmarks/train_zoo.py --epochs 12 --jobs 2
    python benchmarks/train_zoo.py --variants groupnet_cnv_k4 bnn_cnv --epochs 20  # on a GPU
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ["fp_cnv_s", "bnn_cnv_s", "groupnet_cnv_s_k2", "groupnet_cnv_s_k4"]


def train_one(variant: str, args: argparse.Namespace) -> None:
    import torch

    from groupnet.models.train import TrainConfig, train
    torch.set_num_threads(args.threads)
    out = Path(args.out) / variant
    cfg = TrainConfig(variant=variant, dataset=args.dataset, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    train(cfg, out, resume=(out / "last.pt").exists(), progress=not args.quiet)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=TABLE)
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="training processes at once")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--out", default=str(ROOT / "runs" / "zoo"))
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--no-copy", action="store_true", help="do not copy into models/zoo")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        train_one(args.one, args)
        return 0

    # longest runs first (more branches, wider), so parallel slots finish together
    pending = sorted(args.variants, key=lambda v: ("_k4" in v, "_k2" in v, "fp" not in v), reverse=True)
    running: list[tuple[str, subprocess.Popen, object]] = []
    failed = []
    logs = Path(args.out) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    passthrough = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                   if k in ("dataset", "epochs", "batch_size", "lr", "seed", "threads", "out")]
    t0 = time.time()
    while pending or running:
        while pending and len(running) < args.jobs:
            variant = pending.pop(0)
            log = open(logs / f"{variant}.log", "w")
            cmd = [sys.executable, __file__, "--one", variant, "--quiet", *passthrough]
            running.append((variant, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                                      cwd=ROOT), log))
            print(f"[{time.time() - t0:6.0f} s] started {variant} (log: {log.name})", flush=True)
        time.sleep(5)
        for item in list(running):
            variant, proc, log = item
            if proc.poll() is not None:
                running.remove(item)
                log.close()
                status = "done" if proc.returncode == 0 else f"FAILED ({proc.returncode})"
                if proc.returncode:
                    failed.append(variant)
                print(f"[{time.time() - t0:6.0f} s] {variant} {status}", flush=True)

    rows = []
    for variant in args.variants:
        mfile = Path(args.out) / variant / "metrics.json"
        if not mfile.exists():
            continue
        m = json.loads(mfile.read_text())
        rows.append({"variant": variant, "k": m["model_config"].get("k", 1),
                     "width": m["model_config"].get("width"), "epochs": len(m["history"]),
                     "test_accuracy": m["test_accuracy"], "test_images": m["test_images"],
                     "train_minutes": m["train_seconds"] / 60, "device": m["device"],
                     "threads": args.threads})
        if not args.no_copy:
            (ROOT / "models" / "zoo").mkdir(exist_ok=True)
            shutil.copy(Path(args.out) / variant / f"{variant}.pt",
                        ROOT / "models" / "zoo" / f"{variant}.pt")
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    stem = f"accuracy_{args.dataset}"
    (results / f"{stem}.json").write_text(json.dumps(
        {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
         "jobs": args.jobs, "rows": rows}, indent=2) + "\n")
    lines = ["| variant | K | width | epochs | test accuracy | images | train time |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['variant']}` | {r['k']} | {r['width']} | {r['epochs']} | "
                     f"{100 * r['test_accuracy']:.2f}% | {r['test_images']} | "
                     f"{r['train_minutes']:.1f} min ({r['device']}, {r['threads']} thr) |")
    (results / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
