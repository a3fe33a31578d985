"""The ``groupnet`` command: a thin layer over library functions, one verb per lifecycle step.

    groupnet list                                   registered model variants
    groupnet train VARIANT --epochs N --out DIR     train on real data
    groupnet eval CHECKPOINT|MODEL.onnx [--json]    test accuracy
    groupnet export CHECKPOINT -o MODEL.onnx        QONNX export + bit-exact check

User errors (bad path, unknown variant, wrong checkpoint, ...) print one line and exit 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_CHECK_FAILED = 1


def _user_errors() -> tuple[type[BaseException], ...]:
    from groupnet.models.checkpoint import CheckpointError
    from groupnet.models.data import DatasetError
    from groupnet.models.export import ExportError
    from groupnet.models.registry import UnknownModelError
    from groupnet.models.train import TrainError
    return (CheckpointError, DatasetError, ExportError, UnknownModelError, TrainError)


def _parse_option(text: str) -> tuple[str, object]:
    """``k=2`` -> ("k", 2); values are read as JSON when possible, else kept as strings."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"option '{text}' is not NAME=VALUE")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


# ------------------------------------------------------------------------------ verbs
def cmd_list(args: argparse.Namespace) -> int:
    from groupnet.models import list_models
    for name in list_models(args.pattern):
        print(name)
    return 0


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
    cfg = TrainConfig(variant=args.variant, dataset=args.dataset, epochs=args.epochs,
                      relaxed_epochs=args.relaxed_epochs, batch_size=args.batch_size,
                      lr=args.lr, seed=args.seed, augment=not args.no_augment,
                      train_limit=args.train_limit, test_limit=args.test_limit,
                      data_dir=args.data_dir, device=args.device, overrides=overrides)
    out = Path(args.out or f"runs/{args.variant}")
    metrics = train(cfg, out, resume=args.resume, force=args.force,
                    progress=not args.quiet, stop_after=args.stop_after)
    if metrics["stopped_early"]:
        print(f"{args.variant}: stopped after epoch {len(metrics['history'])} of "
              f"{args.epochs}; continue with --resume --out {out}")
        return 0
    print(f"{args.variant}: test accuracy {100 * metrics['test_accuracy']:.2f}% on "
          f"{metrics['test_images']} {args.dataset} test images; "
          f"checkpoint {out / (args.variant + '.pt')}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from groupnet.models.data import load_dataset

    path = Path(args.model)
    if path.suffix == ".onnx":
        from groupnet.models.export import execute_qonnx, read_metadata
        if not path.is_file():
            from groupnet.models.export import ExportError
            raise ExportError(f"{path}: ONNX file not found")
        meta = read_metadata(path)
        variant = meta.get("groupnet.variant", path.stem)
        dataset = args.dataset or meta.get("groupnet.dataset", "fashion-mnist")
        images, labels = load_dataset(dataset, "test", args.data_dir, args.limit)
        pred = execute_qonnx(path, images).argmax(1)
        correct = int((pred == labels).sum())
        result = {"variant": variant, "model": str(path), "executor": "qonnx",
                  "dataset": dataset, "accuracy": correct / max(1, len(labels)),
                  "n": int(len(labels)), "correct": correct}
    else:
        from groupnet.models.checkpoint import load_checkpoint
        from groupnet.models.train import evaluate
        model, payload = load_checkpoint(path)
        dataset = args.dataset or payload["config"].get("dataset", "fashion-mnist")
        images, labels = load_dataset(dataset, "test", args.data_dir, args.limit)
        res = evaluate(model, images, labels, progress=not args.json)
        result = {"variant": payload["variant"], "model": str(path), "executor": "pytorch",
                  "dataset": dataset, "accuracy": res["accuracy"], "n": res["n"],
                  "correct": res["correct"]}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['variant']}: {100 * result['accuracy']:.2f}% "
              f"({result['correct']}/{result['n']} {dataset} test images, {result['executor']})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.data import load_dataset
    from groupnet.models.export import export_qonnx, verify_export

    model, payload = load_checkpoint(args.checkpoint)
    out = Path(args.output or Path(args.checkpoint).with_suffix(".onnx"))
    path = export_qonnx(model, out, metrics=payload.get("metrics"), force=args.force)
    report = {"variant": payload["variant"], "onnx": str(path)}
    if args.verify > 0:
        dataset = payload["config"].get("dataset", "fashion-mnist")
        images, _ = load_dataset(dataset, "test", args.data_dir, args.verify)
        report["verify"] = verify_export(path, model, images)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"exported {payload['variant']} to {path}")
        if "verify" in report:
            v = report["verify"]
            state = "bit-exact" if v["bit_exact"] else "MISMATCH"
            print(f"QONNX execution vs PyTorch on {v['n']} real test images: {state} "
                  f"(max |diff| {v['max_abs_diff']:g})")
    if "verify" in report and not report["verify"]["bit_exact"]:
        return EXIT_CHECK_FAILED
    return 0


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="groupnet", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("list", help="registered model variants, one per line")
    p.add_argument("pattern", nargs="?", help="shell-style filter, e.g. 'groupnet_*'")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("train", help="train a variant on real data")
    p.add_argument("variant")
    p.add_argument("--dataset", default="fashion-mnist",
                   choices=["fashion-mnist", "mnist", "cifar10"])
    p.add_argument("--data-dir", help="dataset folder (default: the dataset's standard place)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--relaxed-epochs", type=int, default=0,
                   help="two-stage schedule: first epochs with real-valued activations "
                        "(binary weights), the rest fully binary")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3, help="peak one-cycle learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--train-limit", type=int, help="use only the first N training images")
    p.add_argument("--test-limit", type=int, help="evaluate on the first N test images")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--option", "-O", action="append", type=_parse_option, metavar="NAME=VALUE",
                   help="model option, e.g. -O k=2 -O width=0.5 (repeatable)")
    p.add_argument("--out", help="output folder (default runs/VARIANT)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--stop-after", type=int, metavar="E",
                   help="stop after epoch E (resume later with --resume)")
    p.add_argument("--force", action="store_true", help="start over, overwriting --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("eval", help="test accuracy of a checkpoint (PyTorch) or .onnx (qonnx)")
    p.add_argument("model", help="checkpoint .pt or exported .onnx")
    p.add_argument("--dataset", help="default: the dataset the model was trained on")
    p.add_argument("--data-dir")
    p.add_argument("--limit", type=int, help="first N test images only")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(fn=cmd_eval)

    p = sub.add_parser("export", help="export a checkpoint to QONNX and check bit-exactness")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", help="output .onnx (default: beside the checkpoint)")
    p.add_argument("--verify", type=int, default=100, metavar="N",
                   help="check QONNX execution == PyTorch on N real test images (0: skip)")
    p.add_argument("--data-dir")
    p.add_argument("--force", action="store_true", help="overwrite an existing .onnx")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_export)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    try:
        return args.fn(args)
    except _user_errors() as err:
        print(f"groupnet {args.verb}: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"groupnet {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
