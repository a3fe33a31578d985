"""Verbs on models: ``list``, ``train``, ``zoo`` (list, show, add, train), ``eval``,
``export``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from .options import (COUNT, EXIT_CHECK_FAILED, EXIT_INTERRUPTED, POSITIVE, add_data,
                      add_out, add_reporting, add_test_images, check_file_path, deprecated,
                      device, number, parse_option, progress_of)


# ------------------------------------------------------------------------------- list
def cmd_list(args: argparse.Namespace) -> int:
    from groupnet.models import list_models
    names = list_models(args.pattern)
    print(json.dumps(names) if args.json else "\n".join(names))
    return 0


# ------------------------------------------------------------------------------ train
def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from groupnet.models import model_defaults
    from groupnet.models.train import TrainConfig, TrainError, train

    overrides = dict(args.option or [])
    unknown = set(overrides) - set(model_defaults(args.variant)) - {"dataset"}
    if unknown:
        raise TrainError(f"model '{args.variant}' has no option(s) {sorted(unknown)}; "
                         f"options: {sorted(model_defaults(args.variant))}")
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = args.dataset or task_dataset(args.variant, overrides)
    cfg = TrainConfig(variant=args.variant, dataset=dataset, epochs=args.epochs,
                      relaxed_epochs=args.relaxed_epochs, batch_size=args.batch_size,
                      lr=args.lr, seed=args.seed, augment=not args.no_augment,
                      train_limit=args.train_images, test_limit=args.test_images,
                      val_limit=args.val_images,
                      data_dir=args.data_dir, device=args.device, overrides=overrides,
                      eval_subset=args.eval_subset or None, fast=not args.brevitas_quant,
                      teacher=args.teacher, distill_alpha=args.distill_alpha,
                      distill_temperature=args.distill_temperature, init=args.init,
                      swa_epochs=args.swa_epochs, swa_lr=args.swa_lr,
                      validation=not args.no_validation)
    out = Path(args.out or f"runs/{args.variant}")
    metrics = _train_in(out, args, lambda: train(
        cfg, out, resume=args.resume, force=args.force, progress=progress_of(args),
        stop_after=args.stop_after, checkpoint_seconds=60 * args.checkpoint_minutes))
    if metrics.get("rank"):                 # torchrun: rank 0 reports
        return 0
    if metrics.get("interrupted"):
        again = [a for a in args.argv if a not in ("--force", "--resume")]
        print(f"groupnet train: interrupted; {out / 'last.pt'} holds the run mid-epoch: "
              f"continue with {shlex.join(['groupnet', *again, '--resume'])}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps({"checkpoint": str(out / (args.variant + ".pt")),
                          **{k: v for k, v in metrics.items() if k != "history"}},
                         default=str))
        return 0
    if metrics["stopped_early"]:
        print(f"{args.variant}: stopped after {metrics['steps_done']} steps "
              f"({len(metrics['history'])} of {args.epochs} epochs complete); continue "
              f"with --resume --out {out}")
        return 0
    if metrics.get("test_map50") is not None:
        score = f"test mAP@0.5 {metrics['test_map50']:.4f}"
    elif metrics.get("test_miou") is not None:
        score = f"test mIoU {metrics['test_miou']:.4f}"
    else:
        score = f"test accuracy {100 * metrics['test_accuracy']:.2f}%"
    print(f"{args.variant}: {score} on {metrics['test_images']} {dataset} test images; "
          f"checkpoint {out / (args.variant + '.pt')}")
    if "distributed" in metrics:
        d = metrics["distributed"]
        print(f"  {d['world_size']} processes ({d['backend']}), {d['batch_per_rank']} images per "
              f"rank and step; state dicts identical on every rank: {d['identical_state_dicts']}")
    return 0


TASK_DATASETS = {"classification": "fashion-mnist", "segmentation": "fashion-mnist-scenes",
                 "detection": "fashion-mnist-boxes"}


def task_dataset(variant: str, overrides: dict) -> str:
    """The default dataset of a variant's task (a segmentation net: Fashion-MNIST scenes)."""
    from groupnet.models import create_model
    task = getattr(create_model(variant, **overrides), "task", "classification")
    return TASK_DATASETS[task]


def _train_in(out: Path, args: argparse.Namespace, run):
    """``run()`` with ``out`` checked (a train run or new folder, never an input), marked
    and locked (rank 0 of a torchrun: the other ranks write nothing)."""
    from groupnet.outdir import check_output, lock, read_marker, write_marker
    if int(os.environ.get("RANK", "0")) != 0:
        return run()
    check_output(out, "train", inputs=(args.teacher, args.init), foreign_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    held = lock(out)
    try:
        if read_marker(out) is None:
            write_marker(out, "train", variant=args.variant)
        return run()
    finally:
        held.release()


# ------------------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    path = Path(args.model)
    result = _eval_onnx(path, args) if path.suffix == ".onnx" else _eval_checkpoint(path, args)
    if args.json:
        print(json.dumps(result))
        return 0
    where = f"({result['n']} {result['dataset']} test images, {result['executor']})"
    if result["task"] == "detection":
        print(f"{result['variant']}: mAP@0.5 {result['map50']:.4f}, mAP@[.5:.95] "
              f"{result['map']:.4f} {where}")
    elif result["task"] == "segmentation":
        print(f"{result['variant']}: mIoU {result['miou']:.4f}, pixel accuracy "
              f"{100 * result['accuracy']:.2f}% {where}")
    else:
        print(f"{result['variant']}: {100 * result['accuracy']:.2f}% "
              f"({result['correct']}/{result['n']} {result['dataset']} test images, "
              f"{result['executor']})")
    return 0


def _eval_onnx(path: Path, args: argparse.Namespace) -> dict:
    """Accuracy (classification) or mIoU (segmentation) of an exported model (qonnx)."""
    from groupnet.models.data import dataset_info, load_dataset
    from groupnet.models.export import ExportError, execute_qonnx, read_metadata
    if not path.is_file():
        raise ExportError(f"{path}: ONNX file not found")
    try:
        meta = read_metadata(path)
    except Exception as err:  # noqa: BLE001 - protobuf raises many kinds
        raise ExportError(f"{path}: not a readable ONNX model ({type(err).__name__}); export "
                          "one with `groupnet export CHECKPOINT -o MODEL.onnx`") from None
    if "groupnet.variant" not in meta:
        raise ExportError(f"{path}: not a model exported by `groupnet export` (no "
                          "groupnet.variant metadata); eval takes its .onnx or a checkpoint")
    variant = meta["groupnet.variant"]
    dataset = args.dataset or meta.get("groupnet.dataset", "fashion-mnist")
    task = dataset_info(dataset).task
    if task == "detection":
        raise ExportError(f"{path}: eval of a detection .onnx is not supported (its boxes are "
                          "decoded on the host); eval the checkpoint for mAP, or `groupnet "
                          "deploy` a build of it (the driver reports mAP)")
    images, labels = load_dataset(dataset, "test", args.data_dir, args.test_images)
    out = execute_qonnx(path, images)
    result = {"variant": variant, "model": str(path), "executor": "qonnx", "task": task,
              "dataset": dataset, "n": int(len(labels))}
    if task == "segmentation" and out.ndim == 4:       # score maps
        import torch

        from groupnet.models.train import dense_logits, segmentation_scores
        pred = dense_logits(torch.from_numpy(out), tuple(images.shape[-2:])).argmax(1)
        res = segmentation_scores(pred, torch.from_numpy(labels), out.shape[1])
        return result | {"accuracy": res["accuracy"], "miou": res["miou"]}
    if out.ndim != 2 or task != "classification":
        raise ExportError(f"{path}: outputs of shape {tuple(out.shape)} for the {dataset} "
                          f"{task} test set; pass the --dataset the model was trained on")
    correct = int((out.argmax(1) == labels).sum())
    return result | {"accuracy": correct / max(1, len(labels)), "correct": correct}


def _eval_checkpoint(path: Path, args: argparse.Namespace) -> dict:
    """The task's metrics of a checkpoint (PyTorch)."""
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.data import load_dataset
    from groupnet.models.train import evaluate, task_of
    model, payload = load_checkpoint(path)
    dataset = args.dataset or payload["config"].get("dataset", "fashion-mnist")
    images, labels = load_dataset(dataset, "test", args.data_dir, args.test_images)
    res = evaluate(model, images, labels, progress=progress_of(args))
    result = {"variant": payload["variant"], "model": str(path), "executor": "pytorch",
              "task": task_of(model), "dataset": dataset, "n": res["n"]}
    keys = {"detection": ("map50", "map"), "segmentation": ("accuracy", "miou")}.get(
        result["task"], ("accuracy", "correct"))
    return result | {k: res[k] for k in keys}


# ----------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.data import load_dataset
    from groupnet.models.export import ExportError, export_qonnx, verify_export

    if Path(args.checkpoint).suffix == ".onnx":
        raise ExportError(f"{args.checkpoint} is an exported ONNX model already; export takes "
                          "a checkpoint (.pt from `groupnet train`)")
    out = Path(args.out or Path(args.checkpoint).with_suffix(".onnx"))
    check_file_path(out, "-o", ExportError)
    model, payload = load_checkpoint(args.checkpoint)
    position = payload.get("epoch_position")
    if position:
        print(f"groupnet export: warning: {args.checkpoint} was written mid-epoch (epoch "
              f"{len(payload.get('history', [])) + 1}, step {position.get('step')}): an "
              "unfinished run's weights; finish it with `groupnet train ... --resume`",
              file=sys.stderr)
    path = export_qonnx(model, out, metrics=payload.get("metrics"), force=args.force)
    report = {"variant": payload["variant"], "onnx": str(path)}
    if args.test_images > 0:
        dataset = args.dataset or payload["config"].get("dataset", "fashion-mnist")
        images, _ = load_dataset(dataset, "test", args.data_dir, args.test_images)
        report["verify"] = verify_export(path, model, images)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"exported {payload['variant']} to {path}")
        if "verify" in report:
            v = report["verify"]
            state = "bit-exact" if v["bit_exact"] else "MISMATCH"
            if model.precision == "fp" and not v["bit_exact"]:
                state = ("float reference: same predictions" if v["predictions_equal"]
                         else "float reference: PREDICTIONS DIFFER")
            print(f"QONNX execution vs PyTorch on {v['n']} real test images: {state} "
                  f"(max |diff| {v['max_abs_diff']:g})")
    if "verify" in report and not report["verify"]["bit_exact"]:
        # float reference models cannot be bit-exact across libraries; binary ones must be
        if model.precision == "fp" and report["verify"]["predictions_equal"]:
            return 0
        return EXIT_CHECK_FAILED
    return 0


# -------------------------------------------------------------------------------- zoo
def cmd_zoo(args: argparse.Namespace) -> int:
    from groupnet.models.zoo_index import ZooError, find, load_index
    if args.action == "add":
        return _zoo_add(args)
    if args.action == "train":
        return _zoo_train(args)
    if args.action == "show":
        if not args.arg:
            raise ZooError("zoo show NAME: which model (`groupnet zoo list` names them)")
        e = find(args.arg)
        if args.json:
            print(json.dumps(e))
            return 0
        r = e["recipe"]
        print(f"{e['name']}  ({e['variant']}" + "".join(f" {k}={v}" for k, v in
                                                        e["options"].items()) + ")")
        print(f"  file       models/zoo/{e['file']}  sha256 {e['sha256'][:16]}...")
        print(f"  recipe     seed {r['seed']}, {r['epochs']} epochs at lr {r['lr']:g}"
              + ((", weights averaged over the last " if r["weights"] == "weight average"
                  else ", the last epoch's weights (not averaged) of ")
                 + f"{r['swa_epochs']} at a constant lr" if r["swa_epochs"] else "")
              + (f", from {r['parent']}" if r["parent"] else "")
              + (f", distilled from {r['teacher']}" if r["teacher"] else "")
              + f"; {r['total_epochs']} epochs in all")
        print(f"  chosen on  {e['chosen_on']}")
        print("  metrics    " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in e["metrics"].items()))
        if e["aliases"]:
            print(f"  old name   {', '.join(e['aliases'])}")
        return 0
    entries = load_index()
    if args.arg:
        import fnmatch
        entries = [e for e in entries if fnmatch.fnmatch(e["name"], args.arg)]
    if args.json:
        print(json.dumps(entries))
        return 0
    for e in entries:
        q = next(((k, v) for k, v in e["metrics"].items() if k.startswith("test_")), ("", ""))
        score = f"{q[0][5:]} {q[1]:.4f}" if q[0] else ""
        print(f"{e['name']:45s} {score:20s} chosen on {e['chosen_on']}")
    return 0


def _zoo_add(args: argparse.Namespace) -> int:
    from groupnet.models.zoo_index import ZOO, ZooError
    from groupnet.models.zoo_publish import publish
    if not args.arg or not args.name:
        raise ZooError("zoo add CHECKPOINT --name VARIANT.TAG_sSEED: which trained checkpoint, "
                       "under which index name")
    zoo = Path(args.out or ZOO)
    e = publish(args.arg, args.name, zoo, force=args.force)
    if args.json:
        print(json.dumps(e))
    else:
        print(f"{e['name']}: {zoo / e['file']} (sha256 {e['sha256'][:16]}...), "
              f"{zoo / 'index.json'} updated; commit both with its metrics file")
    return 0


def _zoo_train(args: argparse.Namespace) -> int:
    from groupnet.explore import run_sweep
    from groupnet.explore.recipes import recipe_of
    from groupnet.models.zoo_index import ZooError
    if not args.arg:
        raise ZooError("zoo train NAME: which zoo model to retrain (`groupnet zoo list` "
                       "names them)")
    r = recipe_of(args.arg)
    what = {"name": r.name, "spec": r.spec_file, "point": r.point.label,
            "key": r.point.key, "explore": r.explore_command(args.out),
            "checkpoint": str(r.trained(args.out)), "publish": r.publish_command(args.out)}
    if not args.dry_run:
        summary = run_sweep(r.spec, r.sweep_folder(args.out), executor="serial",
                            progress=progress_of(args), threads=None, only=[r.point.key])
        row = next(x for x in summary["rows"] if x["point"] == r.point.key)
        if row["status"] == "failed":
            raise ZooError(f"{r.name}: training failed: {row['error']} (the point's folder: "
                           f"{r.trained(args.out).parent})")
        if not r.trained(args.out).is_file():
            raise ZooError(f"{r.name}: {r.trained(args.out)} was not written")
    if args.json:
        print(json.dumps({**what, "dry_run": args.dry_run}))
        return 0
    print(f"{r.name}: {what['spec']}, point {r.point.label} (key {r.point.key})")
    if args.dry_run:
        print(f"  would run: {what['explore']}")
        print(f"  then compare, and publish: {what['publish']}")
    else:
        print(f"  trained: {what['checkpoint']}")
        print(f"  compare it with the zoo's, then publish: {what['publish']}")
    return 0


# ----------------------------------------------------------------------------- parser
def register(sub) -> None:
    p = sub.add_parser("list", help="registered model variants, one per line")
    p.add_argument("pattern", nargs="?", help="shell-style filter, e.g. 'groupnet_*'")
    add_reporting(p, quiet=False, json_help="print the names as one JSON list")
    p.set_defaults(fn=cmd_list)

    _register_train(sub)

    p = sub.add_parser("zoo", help="the trained models committed in models/zoo (index.json)")
    p.add_argument("action", nargs="?", choices=("list", "show", "add", "train"),
                   default="list",
                   help="list (default), show one model, add (publish) a trained "
                        "checkpoint, or train one again from its recipe "
                        "(models/zoo/recipes/; publishing is then up to you)")
    p.add_argument("arg", nargs="?", metavar="NAME|CHECKPOINT",
                   help="list: a shell-style filter; show, train: a model's name (or its old "
                        "name); add: the checkpoint to publish (groupnet train's or an "
                        "explore point's, its metrics beside it)")
    p.add_argument("--name", metavar="VARIANT.TAG_sSEED",
                   help="add: the model's index name, e.g. bnn_cnv_h.kd_s1 (variant and seed "
                        "must be the checkpoint's)")
    p.add_argument("--force", action="store_true",
                   help="add: replace the zoo model of that name")
    p.add_argument("--dry-run", action="store_true",
                   help="train: say which recipe spec and point would run (and the "
                        "`groupnet explore` command that runs it), train nothing")
    add_out(p, "add: the zoo folder (default models/zoo); train: the sweep folder (default "
               "runs/explore/<recipe name>)")
    add_reporting(p, json_help="print the index entries (add: the new one; train: the "
                               "recipe, checkpoint and publish command) as JSON")
    p.set_defaults(fn=cmd_zoo)

    p = sub.add_parser("eval", help="test accuracy of a checkpoint (PyTorch) or .onnx (qonnx)")
    p.add_argument("model", help="checkpoint .pt or exported .onnx")
    add_test_images(p, "the first N test images only (default: all)", old=("--limit",))
    add_data(p, dataset_help="default: the dataset the model was trained on")
    add_reporting(p)
    p.set_defaults(fn=cmd_eval)

    p = sub.add_parser("export", help="export a checkpoint to QONNX and check bit-exactness")
    p.add_argument("checkpoint", help="a trained checkpoint (.pt from `groupnet train`)")
    add_out(p, "output .onnx (default: beside the checkpoint)", old=("--output",))
    add_test_images(p, "check QONNX execution == PyTorch on N real test images (default "
                       "100; 0: no check)", default=100, old=("--verify",), zero=True)
    add_data(p, dataset_help="the check's test images from this dataset (default: the "
                             "model's)")
    p.add_argument("--force", action="store_true", help="overwrite an existing .onnx")
    add_reporting(p)
    p.set_defaults(fn=cmd_export)


def _register_train(sub) -> None:
    p = sub.add_parser("train", help="train a variant on real data")
    p.add_argument("variant", help="a registered variant (`groupnet list`)")
    add_data(p, dataset_help="default: the variant's task's Fashion-MNIST set (fashion-mnist, "
                             "fashion-mnist-scenes, fashion-mnist-boxes)")
    p.add_argument("--epochs", type=COUNT, default=10, help="training epochs (default 10)")
    p.add_argument("--relaxed-epochs", type=number(int, 0), default=0,
                   help="two-stage schedule: first epochs with real-valued activations "
                        "(binary weights), the rest fully binary")
    p.add_argument("--batch-size", type=COUNT, default=128, help="images per step (default 128)")
    p.add_argument("--lr", type=POSITIVE, default=3e-3, help="peak one-cycle learning rate")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights, order, "
                                                       "augmentation; default 0)")
    p.add_argument("--no-augment", action="store_true",
                   help="no random shifts and flips of the training images")
    p.add_argument("--train-images", type=COUNT, metavar="N",
                   help="train on the first N training images only (quick runs)")
    p.add_argument("--val-images", type=COUNT, metavar="N",
                   help="check on the first N validation images (quick runs; default all)")
    p.add_argument("--test-images", type=COUNT, metavar="N",
                   help="the final test evaluation on the first N test images (default all)")
    for old, new in (("--train-limit", "--train-images"), ("--val-limit", "--val-images"),
                     ("--test-limit", "--test-images")):
        deprecated(p, old, new, new[2:].replace("-", "_"), type=COUNT)
    p.add_argument("--device", default="auto", type=device,
                   help="auto (CUDA if present), cpu, cuda")
    p.add_argument("--threads", type=COUNT, help="torch CPU threads")
    p.add_argument("--option", "-O", action="append", type=parse_option, metavar="NAME=VALUE",
                   help="model option, e.g. -O k=2 -O width=0.5 -O agg_bits=3 (repeatable)")
    p.add_argument("--teacher", metavar="CKPT",
                   help="distil from this trained checkpoint (same dataset and input size)")
    p.add_argument("--distill-alpha", type=float, default=0.7,
                   help="weight of the teacher term: (1-a) CE(labels) + a T^2 KL(teacher)")
    p.add_argument("--distill-temperature", type=float, default=4.0,
                   help="softmax temperature T of the teacher term (default 4)")
    p.add_argument("--init", metavar="CKPT",
                   help="fine-tune: start from this trained checkpoint of the same variant "
                        "and options (new optimizer and --epochs/--lr schedule)")
    p.add_argument("--swa-epochs", type=number(int, 0), default=0, metavar="N",
                   help="stochastic weight averaging: the last N epochs at the constant "
                        "--swa-lr, the model the mean of their end weights with batch-norm "
                        "statistics recomputed on the training images")
    p.add_argument("--swa-lr", type=POSITIVE, default=1e-4,
                   help="constant Adam learning rate of the averaged epochs")
    p.add_argument("--eval-subset", type=number(int, 0), default=2000, metavar="N",
                   help="per-epoch check on the first N validation images (0: all); the "
                        "final accuracies are on the whole val and test sets")
    p.add_argument("--no-validation", action="store_true",
                   help="the protocol before the validation split: train on all training "
                        "images, check on the first --eval-subset test images")
    p.add_argument("--brevitas-quant", action="store_true",
                   help="train through Brevitas' generic quantizers instead of the fast "
                        "paths (same values, slower)")
    p.add_argument("--checkpoint-minutes", type=POSITIVE, default=5.0,
                   help="also checkpoint this often within an epoch")
    add_out(p, "output folder (default runs/VARIANT)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--stop-after", type=COUNT, metavar="E",
                   help="stop after epoch E (resume later with --resume)")
    p.add_argument("--force", action="store_true", help="start over, overwriting --out")
    add_reporting(p, json_help="print the run's metrics as one JSON object")
    p.set_defaults(fn=cmd_train)
