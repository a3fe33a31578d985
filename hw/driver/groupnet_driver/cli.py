"""Command line of the deployed driver, with FINN's driver flags::

    python driver.py --exec_mode validate [--batchsize 100] [--backend auto|pynq|sim]
    python driver.py --exec_mode execute --inputfile in.npy --outputfile out.npy
    python driver.py --exec_mode throughput_test --batchsize 1000
    python driver.py --backend serial --port /dev/ttyUSB0 [--baud 3000000]   (UART shell)

Prints a summary (one JSON object with ``--json``); errors are one line, exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .accelerator import BACKENDS, Accelerator
from .spec import DriverError


def main(argv: list[str] | None = None, default_dir: Path | None = None) -> int:
    ap = argparse.ArgumentParser(prog="driver.py", description=__doc__.splitlines()[0])
    ap.add_argument("--exec_mode", choices=("execute", "throughput_test", "validate"),
                    default="validate", help="validate: accuracy and bit-exactness on the "
                    "test images; execute: run --inputfile; throughput_test: FPS")
    ap.add_argument("--dir", type=Path, default=default_dir or Path.cwd(),
                    help="deploy folder (default: the one this script is in)")
    ap.add_argument("--backend", choices=BACKENDS, default="auto",
                    help="auto: the board when one is attached, else the simulator")
    ap.add_argument("--batchsize", type=int, default=100, help="images per call (default 100)")
    ap.add_argument("--port", help="serial backend: the board's port (e.g. /dev/ttyUSB0)")
    ap.add_argument("--baud", type=int, help="serial backend: default the build's (3000000)")
    ap.add_argument("--bitfile", type=Path, help="default: DIR/bitfile/groupnet-accel.bit")
    ap.add_argument("--fclk_mhz", type=float, help="default: the build's clock")
    ap.add_argument("--inputfile", type=Path, help="execute: .npy of (N, C, H, W) uint8")
    ap.add_argument("--outputfile", type=Path, default=Path("output.npy"))
    ap.add_argument("--limit", type=int, help="validate: first N images only")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    try:
        accel = Accelerator(args.dir, args.backend, args.batchsize, args.fclk_mhz, args.bitfile,
                            port=args.port, baud=args.baud)
        if args.exec_mode == "validate":
            res = accel.validate(args.limit)
            print(json.dumps(res) if args.json else
                  f"{res['variant']} on {res['backend']}: "
                  + (f"accuracy {res['accuracy']:.2%}" if "accuracy" in res else
                     f"mIoU {res['miou']:.3f}, pixel accuracy {res['pixel_accuracy']:.2%}"
                     if "miou" in res else
                     f"mAP@0.5 {res['map50'] or 0:.3f}, mAP {res['map'] or 0:.3f}" + (f" ({res['note']})"
                                                                     if "note" in res else ""))
                  + " on "
                  f"{res['n']} {res['dataset']} test images; outputs "
                  + ("identical to the compiler's (bit-exact)" if res["bit_exact"] else
                     f"DIFFER from the compiler's on images {res['mismatched_images']}"))
            return 0 if res["bit_exact"] else 1
        if args.exec_mode == "throughput_test":
            res = accel.throughput_test()
            print(json.dumps(res) if args.json else
                  f"{res['throughput[images/s]']:.0f} images/s, {res['runtime[ms]']:.3f} ms "
                  f"for {res['batch_size']} images at {res['fclk[mhz]']:g} MHz ({res['kind']})")
        else:
            if args.inputfile is None:
                raise DriverError("--exec_mode execute needs --inputfile IMAGES.npy")
            # np.save appends .npy to a name without it: say the file really written, and
            # never write over the input
            out = args.outputfile if args.outputfile.suffix == ".npy" else \
                args.outputfile.with_name(args.outputfile.name + ".npy")
            if out.resolve() == args.inputfile.resolve():
                raise DriverError(f"--outputfile {out} is the --inputfile; name another file")
            images = np.load(args.inputfile)
            np.save(out, np.concatenate(
                [accel.execute(images[i:i + accel.batch_size])
                 for i in range(0, len(images), accel.batch_size)]))
            print(f"wrote {out} ({len(images)} images)")
    except (DriverError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:          # e.g. during the simulator's first compile
        print("interrupted", file=sys.stderr)
        return 130
    return 0
