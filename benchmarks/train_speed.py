"""Training speed: seconds per Fashion-MNIST epoch, Brevitas' quantizers vs the fast paths.

For each variant, the old path (every activation through Brevitas' generic quantizer, the
whole 10,000-image test set evaluated after every epoch) and the new one (the training fast
paths of ``models/quant.py``, which compute the same values and gradients, and a 2,000-image
check per epoch) are timed side by side in one process, alternating, on the same batches:

    seconds/epoch = steps/epoch x median seconds/step (batch 128)
                    + per-epoch evaluation (timed on 2,000 test images, scaled)

Steps are timed after the shared quantizers' runtime-statistics phase (their first 100
steps), which is the state of all but the first ~2% of a run. Writes
``benchmarks/results/train_speed.{json,md}``.

    python benchmarks/train_speed.py                 # K=1 and K=4 at widths 0.25 and 0.5
    python benchmarks/train_speed.py --steps 4 --variants bnn_cnv_s   # quick look
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ["bnn_cnv_s", "groupnet_cnv_s_k4", "bnn_cnv_h", "groupnet_cnv_h_k4"]
TRAIN_IMAGES, TEST_IMAGES, CHECK_IMAGES, BATCH = 60_000, 10_000, 2_000, 128


def _skip_stats_phase(model) -> None:
    """End Brevitas' runtime-statistics collection, as after the first 100 steps."""
    for mod in model.modules():
        if hasattr(mod, "collect_stats_steps") and hasattr(mod, "init_scale"):
            mod.init_scale()


def measure(variant: str, steps: int, threads: int) -> dict:
    import torch
    import torch.nn.functional as F

    from groupnet.models import create_model
    from groupnet.models.blocks import set_fast_training
    from groupnet.models.data import load_dataset
    from groupnet.models.train import evaluate

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x_train, y_train = load_dataset("fashion-mnist", "train", limit=BATCH * (steps + 2))
    x_test, y_test = load_dataset("fashion-mnist", "test", limit=CHECK_IMAGES)
    models, opts = {}, {}
    for path in ("brevitas", "fast"):
        m = create_model(variant)
        m.train()
        # one forward in training mode sets the runtime statistics, then freeze them
        with torch.no_grad():
            m(torch.from_numpy(x_train[:BATCH]).float())
        _skip_stats_phase(m)
        set_fast_training(m, path == "fast")
        models[path] = m
        opts[path] = torch.optim.Adam(m.parameters(), lr=1e-3)

    times: dict[str, list[float]] = {"brevitas": [], "fast": []}
    for i in range(steps + 2):
        x = torch.from_numpy(x_train[i * BATCH:(i + 1) * BATCH]).float()
        y = torch.from_numpy(y_train[i * BATCH:(i + 1) * BATCH])
        for path in (("brevitas", "fast") if i % 2 == 0 else ("fast", "brevitas")):
            m, opt = models[path], opts[path]
            m.train()
            t0 = time.perf_counter()
            loss = F.cross_entropy(m(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= 2:                      # two warm-up steps
                times[path].append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    evaluate(models["fast"], x_test, y_test)
    eval_check = time.perf_counter() - t0
    steps_per_epoch = math.ceil(TRAIN_IMAGES / BATCH)
    row = {"variant": variant, "k": models["fast"].k,
           "width": models["fast"].config.get("width", 1 / 16), "steps_timed": steps}
    for path, eval_images in (("brevitas", TEST_IMAGES), ("fast", CHECK_IMAGES)):
        step = statistics.median(times[path])
        train_s = steps_per_epoch * step
        eval_s = eval_check * eval_images / CHECK_IMAGES
        row[path] = {"seconds_per_step": step, "train_seconds": train_s,
                     "eval_seconds": eval_s, "epoch_seconds": train_s + eval_s}
    row["speedup_train_steps"] = row["brevitas"]["train_seconds"] / row["fast"]["train_seconds"]
    row["speedup_epoch"] = row["brevitas"]["epoch_seconds"] / row["fast"]["epoch_seconds"]
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=VARIANTS)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per path")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_speed"))
    ap.add_argument("--note", default="", help="load on the machine while measuring")
    args = ap.parse_args()
    rows = []
    for v in args.variants:
        rows.append(measure(v, args.steps, args.threads))
        r = rows[-1]
        print(f"{v}: {r['brevitas']['epoch_seconds']:.0f} -> {r['fast']['epoch_seconds']:.0f}"
              f" s/epoch ({r['speedup_epoch']:.2f}x; train steps {r['speedup_train_steps']:.2f}x)",
              flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
            "threads": args.threads, "batch_size": BATCH, "note": args.note}
    out.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    lines = [f"Seconds per Fashion-MNIST epoch (60,000 images, batch {BATCH}, "
             f"{args.threads} torch thread; {args.note or 'see the json for the machine'}): "
             "the median step time times 469 steps, plus the per-epoch evaluation.", "",
             "| variant | K | width | Brevitas quantizers + full test eval | fast paths + "
             "2,000-image check | speed-up (epoch) | speed-up (train steps) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['variant']}` | {r['k']} | {r['width']} | "
                     f"{r['brevitas']['epoch_seconds']:.0f} s | {r['fast']['epoch_seconds']:.0f} s"
                     f" | {r['speedup_epoch']:.2f}x | {r['speedup_train_steps']:.2f}x |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
