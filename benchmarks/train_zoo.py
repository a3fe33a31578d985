"""Train a table of runs (the model zoo, or a recipe pilot) one job per core, resumable.

Each run is a spec ``VARIANT[@SEED][+OPTION=VALUE ...][+kd]``, for example
``groupnet_cnv_h_k4@1+agg_bits=3+kd`` (seed 1, 3-bit aggregation, distilled from
``--teacher``). Runs train in worker processes (``--jobs``, one torch thread each by
default) under ``runs/<table>/<name>/``; a stopped invocation (Ctrl-C, end of a session)
is continued by running the same command again: every run resumes exactly from its last
checkpoint (written every few minutes, see ``models/train.py``). A ``+kd`` run waits until
the teacher checkpoint exists, so the teacher can be one of the runs of the same table.

When all runs of the invocation are done, ``benchmarks/results/<table>.{json,md}`` list
every finished run of the table (also those of earlier invocations) and, with ``--zoo``,
each final checkpoint is copied to ``models/zoo/<name>.pt`` with its metrics beside it;
a run whose metrics are in ``models/zoo/`` is finished (it is not trained again, and its
row comes from there when its run folder is gone, e.g. on a new machine).

A machine's ``runs/`` does not outlive it. ``--park`` copies every unfinished run's last
checkpoint into ``benchmarks/carry/<table>/`` (committed), and the next invocation of the
same table on any machine resumes each run from there when its run folder has none:

    python benchmarks/train_zoo.py --table zoo_fashion-mnist --park   # before stopping

    python benchmarks/train_zoo.py --table zoo_fashion-mnist --epochs 16 --zoo \\
        --teacher runs/zoo_fashion-mnist/fp_cnv_h/fp_cnv_h.pt \\
        --runs fp_cnv_h bnn_cnv_h+kd groupnet_cnv_h_k4+kd ...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class RunSpec:
    variant: str
    seed: int = 0
    options: dict = field(default_factory=dict)
    kd: bool = False
    suffix: str = ""              # --suffix: a recipe's runs beside another's of one name

    @classmethod
    def parse(cls, text: str, suffix: str = "") -> "RunSpec":
        head, *items = text.split("+")
        variant, _, seed = head.partition("@")
        options, kd = {}, False
        for item in items:
            if item == "kd":
                kd = True
                continue
            key, eq, value = item.partition("=")
            if not eq:
                raise SystemExit(f"run '{text}': '{item}' is not OPTION=VALUE or kd")
            try:
                options[key] = json.loads(value)
            except json.JSONDecodeError:
                options[key] = value
        return cls(variant, int(seed or 0), options, kd, suffix)

    @property
    def name(self) -> str:
        parts = [self.variant]
        parts += [f"{k.replace('_bits', '')}{v}" for k, v in sorted(self.options.items())]
        if self.kd:
            parts.append("kd")
        if self.seed:
            parts.append(f"seed{self.seed}")
        return "_".join(parts) + self.suffix

    def __str__(self) -> str:
        text = self.variant + (f"@{self.seed}" if self.seed else "")
        text += "".join(f"+{k}={json.dumps(v)}" for k, v in sorted(self.options.items()))
        return text + ("+kd" if self.kd else "")


LOCK = ".train.lock"
ZOO = ROOT / "models" / "zoo"
CARRY = ROOT / "benchmarks" / "carry"


def _finished(spec_name: str, args: argparse.Namespace, check: bool = False) -> bool:
    """The run has its metrics in its folder or in ``models/zoo/``. ``check``: a zoo
    record must have this invocation's dataset and epochs (see ``_zoo_record``)."""
    return ((Path(args.out) / spec_name / "metrics.json").exists()
            or _zoo_record(spec_name, args, check) is not None)


def _zoo_record(name: str, args: argparse.Namespace, check: bool = True) -> Path | None:
    """``models/zoo/<name>.metrics.json``; with ``check``, a zoo model of the same name
    trained on another dataset or for another number of epochs is one clear line (it is
    neither taken as this run's result nor overwritten)."""
    path = ZOO / f"{name}.metrics.json"
    if not path.exists():
        return None
    tcfg = json.loads(path.read_text()).get("train_config")
    if not check or tcfg is None:
        return path
    have = (tcfg.get("dataset"), tcfg.get("epochs"))
    if have != (args.dataset, args.epochs):
        raise SystemExit(f"{path}: trained on {have[0]} for {have[1]} epochs, this run asks "
                         f"{args.dataset} for {args.epochs}: give the runs a --suffix "
                         "(e.g. --suffix _e36) so that they do not share its name")
    return path


def unpark(specs: list[RunSpec], args: argparse.Namespace) -> None:
    """Resume points from ``benchmarks/carry/<table>/``: copied into run folders that have
    no checkpoint of their own (a new machine)."""
    for spec in specs:
        src, dst = CARRY / args.table / spec.name / "last.pt", Path(args.out) / spec.name
        if src.is_file() and not (dst / "last.pt").exists() and not _finished(spec.name, args):
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / "last.pt")
            print(f"{spec.name}: resuming from the carried {src}", flush=True)


def park(args: argparse.Namespace) -> None:
    """Copy each unfinished run's ``last.pt`` to ``benchmarks/carry/<table>/`` (to commit),
    and drop carried points of runs that have finished since."""
    carry, out = CARRY / args.table, Path(args.out)
    for run in sorted(p for p in out.glob("*/last.pt")):
        name = run.parent.name
        if _busy(run.parent):
            raise SystemExit(f"{run.parent} is still training: stop it first (SIGTERM or "
                             "Ctrl-C writes its checkpoint), then --park")
        if _finished(name, args):
            continue
        (carry / name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(run, carry / name / "last.pt")
        import torch
        epochs = len(torch.load(run, map_location="cpu", weights_only=False)["history"])
        print(f"parked {name} ({epochs} epochs done, {run.stat().st_size / 1e6:.1f} MB)")
    for stale in sorted(carry.glob("*/last.pt")):
        if _finished(stale.parent.name, args):
            shutil.rmtree(stale.parent)
            print(f"dropped {stale.parent.name} (finished)")


def _busy(run_dir: Path) -> bool:
    """Another process (of any invocation) is training this run right now."""
    try:
        pid = int((run_dir / LOCK).read_text())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return pid != os.getpid()


def train_one(spec: RunSpec, args: argparse.Namespace) -> None:
    import torch

    from groupnet.models.train import TrainConfig, train
    torch.set_num_threads(args.threads)
    out = Path(args.out) / spec.name
    if _busy(out):
        raise SystemExit(f"{out} is being trained by another process")
    out.mkdir(parents=True, exist_ok=True)
    (out / LOCK).write_text(str(os.getpid()))
    cfg = TrainConfig(variant=spec.variant, dataset=args.dataset, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, seed=spec.seed,
                      overrides=spec.options,
                      teacher=str(Path(args.teacher).resolve()) if spec.kd else None,
                      distill_alpha=args.distill_alpha,
                      distill_temperature=args.distill_temperature,
                      init=str(Path(args.init).resolve()) if args.init else None,
                      swa_epochs=args.swa_epochs, swa_lr=args.swa_lr)
    try:
        train(cfg, out, resume=(out / "last.pt").exists(), progress=not args.quiet)
    finally:
        (out / LOCK).unlink(missing_ok=True)


def _ready(spec: RunSpec, args: argparse.Namespace) -> bool:
    return (not spec.kd or Path(args.teacher).is_file()) and not _busy(Path(args.out) / spec.name)


def run_all(specs: list[RunSpec], args: argparse.Namespace) -> list[str]:
    """Run the specs ``args.jobs`` at a time; returns the names of failed runs."""
    unpark(specs, args)
    pending = [s for s in specs if not _finished(s.name, args, check=True)]
    running: list[tuple[RunSpec, subprocess.Popen, object]] = []
    failed: list[str] = []
    logs = Path(args.out) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    passthrough = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                   if k in ("dataset", "epochs", "batch_size", "lr", "threads", "out",
                            "teacher", "distill_alpha", "distill_temperature", "suffix",
                            "init", "swa_epochs", "swa_lr")
                   and v is not None]
    t0 = last_note = time.time()
    try:
        while pending or running:
            if not running and pending and time.time() - last_note > 600:
                last_note = time.time()
                print(f"[{time.time() - t0:6.0f} s] waiting: {', '.join(s.name for s in pending)}"
                      " (teacher not trained yet, or trained by another process)", flush=True)
            for spec in list(pending):
                if len(running) >= args.jobs:
                    break
                if _finished(spec.name, args):
                    pending.remove(spec)          # finished by another invocation
                    continue
                if not _ready(spec, args):
                    continue                      # teacher not trained yet, or run busy
                pending.remove(spec)
                log = open(logs / f"{spec.name}.log", "a")
                cmd = [sys.executable, __file__, "--one", str(spec), "--quiet", *passthrough]
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
                running.append((spec, proc, log))
                print(f"[{time.time() - t0:6.0f} s] started {spec.name} (log: {log.name})",
                      flush=True)
            time.sleep(5)
            for item in list(running):
                spec, proc, log = item
                if proc.poll() is not None:
                    running.remove(item)
                    log.close()
                    ok = proc.returncode == 0 and (Path(args.out) / spec.name
                                                   / "metrics.json").exists()
                    if not ok:
                        failed.append(spec.name)
                    print(f"[{time.time() - t0:6.0f} s] {spec.name} "
                          f"{'done' if ok else f'FAILED or stopped ({proc.returncode})'}",
                          flush=True)
    except KeyboardInterrupt:
        # workers got the same SIGINT: each writes a checkpoint at its next step and exits
        for _, proc, _ in running:
            proc.wait()
        print("stopped; run the same command again to resume every run")
        raise SystemExit(130)
    return failed


def _row(name: str, metrics: Path | dict) -> dict:
    """One results-table row from a finished run's ``metrics.json`` (or its contents)."""
    m = json.loads(metrics.read_text()) if isinstance(metrics, Path) else metrics
    cfg, tcfg = m["model_config"], m["train_config"]
    init = _init_of(m)
    return {
        "name": name, "variant": m["variant"], "k": cfg.get("k", 1),
        "width": cfg.get("width"), "agg_bits": cfg.get("agg_bits") if cfg.get("k", 1) > 1
        else None, "precision": "fp" if m["variant"].startswith("fp_") else "binary",
        "seed": tcfg["seed"], "distilled": tcfg.get("teacher") is not None,
        "epochs": len(m["history"]) + (init["epochs"] if init else 0),
        "init": init, "lr": tcfg.get("lr"), "swa": _swa_of(m),
        "test_accuracy": m["test_accuracy"],
        "test_miou": m.get("test_miou"), "test_map50": m.get("test_map50"),
        "test_map": m.get("test_map"),
        "test_images": m["test_images"],
        "train_minutes": (m["train_seconds"] + (init["train_seconds"] if init else 0)) / 60,
        "train_cpu_minutes": (m.get("train_cpu_seconds", m["train_seconds"])
                              + (init["train_cpu_seconds"] if init else 0)) / 60,
        "device": m["device"], "threads": m["torch_threads"]}


def _swa_of(m: dict) -> dict | None:
    """A run that averaged its weights (``--swa-epochs``): how, and what the last epoch's
    own weights scored (the same run without the averaging)."""
    swa = m.get("swa")
    return swa and {k: v for k, v in swa.items() if k != "bn_seconds"}


LAST = "_last"           # a weight-averaged run's last-epoch model: <run name>_last


def last_weights_metrics(m: dict) -> dict:
    """The metrics of a weight-averaged run's last-epoch model (``<variant>_last.pt``: the
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


def last_weights_runs(table_dir: Path) -> dict[str, tuple[Path, dict]]:
    """``<run>_last``: (checkpoint, metrics) of every weight-averaged run in ``table_dir``
    that kept its last-epoch model."""
    found = {}
    for p in sorted(table_dir.glob("*/metrics.json")):
        m = json.loads(p.read_text())
        ckpt = p.parent / f"{m['variant']}{LAST}.pt"
        if m.get("swa") and ckpt.is_file():
            found[p.parent.name + LAST] = (ckpt, last_weights_metrics(m))
    return found


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


def _init_of(m: dict) -> dict | None:
    """A fine-tuned run (``--init``): the model it started from, by the metrics beside that
    checkpoint (``models/zoo/<name>.metrics.json`` or its run folder's): its name, and its
    whole recipe's epochs (``stages``: 16, then 4, ... when it was itself fine-tuned),
    accuracy and train time, so that a row counts the whole recipe's epochs and time."""
    if not m.get("init"):
        return None
    ckpt = Path(m["init"]["checkpoint"])
    beside = [ckpt.with_name(ckpt.stem + ".metrics.json"), ckpt.with_name("metrics.json"),
              ZOO / f"{ckpt.stem}.metrics.json"]      # (the path of another machine)
    src = next((p for p in beside if p.is_file()), None)
    if src is None:
        raise SystemExit(f"{ckpt}: the fine-tuned run's starting model has no metrics beside "
                         "it (name.metrics.json or metrics.json): its row cannot count the "
                         "whole recipe")
    s = json.loads(src.read_text())
    name = ckpt.stem if src.name != "metrics.json" else ckpt.parent.name
    before = _init_of(s) or {"stages": [], "train_seconds": 0.0, "train_cpu_seconds": 0.0}
    stages = before["stages"] + [len(s["history"])]
    return {"name": name, "epochs": sum(stages), "stages": stages,
            "lr": s["train_config"]["lr"], "test_accuracy": s["test_accuracy"],
            "train_seconds": s["train_seconds"] + before["train_seconds"],
            "train_cpu_seconds": (s.get("train_cpu_seconds", s["train_seconds"])
                                  + before["train_cpu_seconds"])}


def collect(table_dir: Path, order: list[str], table: str | None = None,
            keep_last: bool = False) -> list[dict]:
    """Rows of every finished run: its run folder, else its ``models/zoo/`` copy.

    With ``table``, the rows already in ``benchmarks/results/<table>.json`` come first and
    stay (refreshed from their run folder or zoo copy where one exists): a command that
    trains one more run adds a row, it never drops the others. ``keep_last``: a
    weight-averaged run's last-epoch model is a row too (``<run>_last``).
    """
    old = {}
    if table and (RESULTS / f"{table}.json").exists():
        old = {r["name"]: r for r in
               json.loads((RESULTS / f"{table}.json").read_text()).get("rows", [])}
    order = list(old) + [n for n in order if n not in old]
    found = {n: ZOO / f"{n}.metrics.json" for n in order
             if (ZOO / f"{n}.metrics.json").exists()}
    found |= {p.parent.name: p for p in table_dir.glob("*/metrics.json")}
    last = last_weights_runs(table_dir)
    found |= {n: metrics for n, (_, metrics) in last.items() if keep_last or n in order}
    names = order + sorted(set(found) - set(order))
    return [_row(n, found[n]) if n in found else old[n]
            for n in names if n in found or n in old]


def recipe_epochs(init: dict) -> str:
    """The epochs of a fine-tune's starting model: '16', or '16+4' when it was itself
    fine-tuned (a row written before stages were kept: its epoch count)."""
    return "+".join(map(str, init.get("stages", [init["epochs"]])))


def _epochs(row: dict) -> str:
    """'16', or '16+8' for a run fine-tuned 8 epochs from a 16-epoch model ('16+4+4' when
    that model was itself fine-tuned)."""
    init = row.get("init")
    return (f"{recipe_epochs(init)}+{row['epochs'] - init['epochs']}" if init
            else str(row["epochs"]))


def write_table(table: str, rows: list[dict], meta: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{table}.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    seg = any(r.get("test_miou") is not None for r in rows)
    det = any(r.get("test_map50") is not None for r in rows)
    quality = ("test mAP@0.5 / mAP" if det else
               "test mIoU / pixel accuracy" if seg else "test accuracy")
    lines = [f"| run | K | width | agg bits | distilled | seed | epochs | {quality} "
             "| train time (CPU) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        score = (f"{r['test_map50']:.3f} / {r['test_map']:.3f}" if det else
                 f"{r['test_miou']:.3f} / {100 * r['test_accuracy']:.2f}%" if seg
                 else f"{100 * r['test_accuracy']:.2f}%")
        lines.append(
            f"| `{r['name']}` | {r['k']} | {r['width']} | {r['agg_bits'] or '-'} | "
            f"{'yes' if r['distilled'] else 'no'} | {r['seed']} | {_epochs(r)} | "
            f"{score} ({r['test_images']}) | "
            f"{r['train_cpu_minutes']:.0f} min ({r['device']}, {r['threads']} thr) |")
    for r in rows:
        if r.get("init"):
            lines.append(f"\n`{r['name']}`: fine-tuned (`--init`) from `{r['init']['name']}` "
                         f"({100 * r['init']['test_accuracy']:.2f}%, {recipe_epochs(r['init'])} "
                         f"epochs) for {r['epochs'] - r['init']['epochs']} more epochs, "
                         f"{schedule_note(r)}; its train time counts the whole recipe.")
    (RESULTS / f"{table}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", required=False, default=[],
                    help="run specs VARIANT[@SEED][+OPTION=VALUE][+kd]")
    ap.add_argument("--table", default="zoo_fashion-mnist",
                    help="results name: runs/<table>/, benchmarks/results/<table>.*")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--teacher", help="checkpoint that +kd runs distil from")
    ap.add_argument("--distill-alpha", type=float, default=0.7)
    ap.add_argument("--distill-temperature", type=float, default=4.0)
    ap.add_argument("--init", metavar="CKPT",
                    help="fine-tune every run from this trained checkpoint (same variant and "
                         "options; give the runs a --suffix)")
    ap.add_argument("--swa-epochs", type=int, default=0, metavar="N",
                    help="stochastic weight averaging over the last N epochs (at --swa-lr)")
    ap.add_argument("--swa-lr", type=float, default=1e-4,
                    help="constant Adam learning rate of the averaged epochs")
    ap.add_argument("--jobs", type=int, default=2, help="training processes at once")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--out", help="runs folder (default runs/<table>)")
    ap.add_argument("--zoo", action="store_true",
                    help="copy final checkpoints and metrics into models/zoo/")
    ap.add_argument("--keep-last", action="store_true",
                    help="a --swa-epochs run's last-epoch model (no averaging) is a row "
                         "(and, with --zoo, a zoo model) of its own: <name>_last")
    ap.add_argument("--collect", action="store_true",
                    help="train nothing: write the table (and --zoo copies) of the runs "
                         "finished so far, e.g. while other runs still train")
    ap.add_argument("--park", action="store_true",
                    help="train nothing: copy unfinished runs' checkpoints to "
                         "benchmarks/carry/<table>/ for another machine or session")
    ap.add_argument("--suffix", default="",
                    help="appended to every run's name (runs/<table>/<name><suffix>, "
                         "models/zoo/<name><suffix>.pt): another recipe of the same models")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.out = args.out or str(ROOT / "runs" / args.table)
    if args.one:
        train_one(RunSpec.parse(args.one, args.suffix), args)
        return 0
    if args.park:
        park(args)
        return 0
    specs = [RunSpec.parse(s, args.suffix) for s in args.runs]
    if any(s.kd for s in specs) and not args.teacher:
        raise SystemExit("+kd runs need --teacher CKPT")
    failed = [] if args.collect else run_all(specs, args)
    rows = collect(Path(args.out), [s.name for s in specs], args.table, args.keep_last)
    if args.zoo:
        zoo = ZOO
        zoo.mkdir(exist_ok=True)
        from groupnet.models.checkpoint import compact_checkpoint
        last = last_weights_runs(Path(args.out))
        for r in rows:
            src = Path(args.out) / r["name"]
            if r["name"] in last:
                ckpt, metrics = last[r["name"]]
                compact_checkpoint(ckpt, zoo / f"{r['name']}.pt")
                (zoo / f"{r['name']}.metrics.json").write_text(
                    json.dumps(metrics, indent=2) + "\n")
            elif (src / "metrics.json").exists():  # else its zoo copy is the record
                compact_checkpoint(src / f"{r['variant']}.pt", zoo / f"{r['name']}.pt")
                shutil.copy(src / "metrics.json", zoo / f"{r['name']}.metrics.json")
    write_table(args.table, rows, {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "dataset": args.dataset, "jobs": args.jobs,
        "teacher": args.teacher, "distill_alpha": args.distill_alpha,
        "distill_temperature": args.distill_temperature})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
