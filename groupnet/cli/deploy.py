"""``deploy``: a self-contained folder for a PYNQ board (or the simulator)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .options import add_data, add_out, add_reporting, add_test_images, progress_of


def cmd_deploy(args: argparse.Namespace) -> int:
    from groupnet.flow import dataset_of, images_for
    from groupnet.hw.build import Build
    from groupnet.hw.deploy.package import NEEDS, DeployError, deploy

    build = Build.open(args.build_dir, need=NEEDS, error=DeployError)
    out = Path(args.out) if args.out else build.root / "deploy"
    dataset = args.images or args.dataset or dataset_of(build.paths.input)
    images, labels = images_for(build.root, args.test_images, args.data_dir, args.dataset,
                                args.images, args.labels)
    if labels is None:
        raise DeployError("--images needs --labels for deploy (the validation set's true "
                          "classes, so that the driver can report accuracy)")
    if not args.images and len(images) < args.test_images and progress_of(args):
        print(f"-n {args.test_images}: {dataset} has {len(images)} test images; "
              f"shipping all {len(images)}", file=sys.stderr)
    result = deploy(build, out, images, labels, force=args.force, progress=progress_of(args))
    if args.json:
        print(json.dumps(result))
        return 0
    if "validation_accuracy_expected" in result:
        quality = f"accuracy {result['validation_accuracy_expected']:.1%}"
    elif "validation_miou_expected" in result:
        quality = f"mIoU {result['validation_miou_expected']:.3f}"
    else:
        quality = f"mAP@0.5 {result['validation_map50_expected'] or 0:.3f}"
    print(f"deploy folder {out}: {result['variant']} for {result['board']}, "
          f"{result['validation_images']} {dataset} test images (expected {quality}), "
          + ("bitstream included" if result["bitfile"] else
             "no bitstream (`groupnet bitstream` first): runs on the simulator backend"
             if build.board.is_ecp5 else
             "no bitfile (no Vivado build): runs on the simulator backend"))
    print(f"  try it: python {out / 'driver.py'} --exec_mode validate --backend sim")
    return 0


def register(sub) -> None:
    p = sub.add_parser("deploy", help="a self-contained folder for a PYNQ board (driver, IO "
                                      "spec, validation images, simulator model, bitfile)")
    p.add_argument("build_dir", help="a build folder (`groupnet build ... -o DIR`)")
    add_out(p, "deploy folder (default BUILD/deploy)")
    add_test_images(p, "test images shipped with their labels and expected outputs (the "
                       "driver's validation set; default 100)", default=100,
                    old=("--validation",))
    add_data(p, images=True, labels=True)
    p.add_argument("--force", action="store_true", help="replace an existing deploy folder")
    add_reporting(p, json_help="print one JSON summary")
    p.set_defaults(fn=cmd_deploy)
