"""``explore``: a design-space sweep (train, build, estimate, simulate) on Dask."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .options import COUNT, add_out, add_reporting, parse_option, progress_of


def cmd_explore(args: argparse.Namespace) -> int:
    from groupnet.explore import load_spec, run_sweep
    spec = load_spec(args.spec)
    out = Path(args.out or Path("runs") / "explore" / spec.name)
    if args.park:
        from groupnet.explore.park import park_sweep
        counts = park_sweep(spec, out)
        if args.json:
            print(json.dumps(counts))
        else:
            print(f"{spec.park}: {counts['finished']} finished trainings and "
                  f"{counts['resume']} resume points parked ({counts['already']} parked "
                  "before); commit the folder to keep them")
        return 0
    executor = ("scheduler" if args.scheduler else "slurm" if args.slurm
                else "serial" if args.serial else "local")
    summary = run_sweep(spec, args.out, executor=executor, workers=args.workers,
                        scheduler=args.scheduler, slurm_jobs=args.slurm or 1,
                        cluster_options=dict(args.cluster_option or []),
                        progress=progress_of(args),
                        retry_failed=args.retry_failed, threads=args.threads,
                        only=args.only)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, default=str))
        return 0
    print((out / "front.md").read_text())
    failed = sum(1 for r in summary["rows"] if r["status"] == "failed")
    print(f"{len(summary['rows'])} results ({failed} failed) in {out / 'results.jsonl'}; "
          f"front: {out / 'front.md'}" + (f", {out / 'front.png'}"
                                          if (out / "front.png").exists() else ""))
    return 0


def register(sub) -> None:
    p = sub.add_parser("explore", help="design-space sweep (train, build, estimate, "
                                       "simulate) -> accuracy x LUT x FPS front per board")
    p.add_argument("spec", help="sweep spec (YAML; docs/explore.md)")
    add_out(p, "sweep folder (default runs/explore/<spec name>); an interrupted sweep "
               "resumes there")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=COUNT,
                       help="local Dask workers (default: one per core)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    where.add_argument("--slurm", type=int, metavar="JOBS",
                       help="this many Slurm jobs of Dask workers (dask-jobqueue)")
    where.add_argument("--serial", action="store_true", help="no Dask: one point after another")
    p.add_argument("--cluster-option", "-C", action="append", type=parse_option,
                   metavar="NAME=VALUE", help="SLURMCluster option, e.g. -C queue=gpu "
                                              "-C memory=32GB -C walltime=04:00:00")
    p.add_argument("--threads", type=COUNT, default=1,
                   help="torch threads per point (default 1: one point per core)")
    p.add_argument("--only", action="append", metavar="KEY|LABEL",
                   help="run only this point of the spec (its key or label, as front.md "
                        "shows them; repeat for more); the front then lists those only")
    p.add_argument("--retry-failed", action="store_true",
                   help="run points recorded as failed again")
    p.add_argument("--park", action="store_true",
                   help="copy the sweep's trainings (finished ones and the resume points of "
                        "unfinished ones) into the spec's park folder, then exit; safe while "
                        "the sweep runs")
    add_reporting(p, json_help="print one JSON summary")
    p.set_defaults(fn=cmd_explore)
