"""Compile time: `groupnet build CHECKPOINT --to-step estimates`, this tree against a
baseline commit, alternating in one run.

Each build is a fresh process (imports, export of the checkpoint, the build through the
'estimates' step), as a user runs it. Reported: wall time, the process's CPU time (user +
system: the fairer figure when the machine is shared) and FINN's/this flow's time per
step. The baseline runs from a `git archive` of the given commit, laid out as the package
(`groupnet/`, `groupnet/models`, `groupnet/hw`) on PYTHONPATH, with the same venv.
Writes ``benchmarks/results/compile_time.{json,md}``.

    python benchmarks/compile_time.py                       # vs the default baseline
    python benchmarks/compile_time.py --baseline HEAD~5 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the main that landed before the compile-time work (issue 11's "today")
DEFAULT_BASELINE = "58a6d28"
DEFAULT_MODEL = ROOT / "models" / "zoo" / "groupnet_cnv_s_k4.pt"


def baseline_tree(ref: str, dest: Path) -> Path:
    """The package of commit ``ref`` laid out for PYTHONPATH; returns that folder."""
    src = dest / "src"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True,
                             capture_output=True).stdout
    archive_path = dest / "src.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(src, filter="data")
    pkg = dest / "pkg"
    pkg.mkdir()
    (pkg / "groupnet").symlink_to(src / "groupnet", target_is_directory=True)
    for sub in ("models", "hw"):
        link = src / "groupnet" / sub
        if not link.exists():
            link.symlink_to(src / sub, target_is_directory=True)
    return pkg


def one_build(pythonpath: Path | None, model: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    code = ("import sys; from groupnet.cli import main; sys.exit(main(sys.argv[1:]))")
    if pythonpath is not None:
        code = f"import sys; sys.path.insert(0, {str(pythonpath)!r}); " + code
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, "build", str(model), "--board",
                           "pynq-z2", "--out", str(out), "--to-step", "estimates", "--force",
                           "--quiet"], capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({pythonpath or 'this tree'}):\n{proc.stderr[-2000:]}")
    from groupnet.hw.build import Build
    build = Build.open(out)
    steps, est = build.report("time_per_step.json"), build.estimates()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "steps_s": steps, "fps": est["fps"],
            "lut": est["lut"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default=DEFAULT_BASELINE, help="git ref to compare with")
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--note", default="", help="load on the machine while measuring")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "compile_time"))
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {"baseline": [], "this tree": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pkg = baseline_tree(args.baseline, tmp / "baseline")
        for i in range(args.repeats):
            order = ("baseline", "this tree") if i % 2 == 0 else ("this tree", "baseline")
            for name in order:
                r = one_build(pkg if name == "baseline" else None, Path(args.model),
                              tmp / f"{name.replace(' ', '_')}_{i}")
                runs[name].append(r)
                print(f"{name}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU", flush=True)
    base, new = runs["baseline"], runs["this tree"]
    assert all(r["fps"] == base[0]["fps"] and r["lut"] == base[0]["lut"] for r in base + new), \
        "the two trees built different accelerators"

    def med(rs, key):
        return statistics.median(r[key] for r in rs)
    summary = {name: {"wall_s": med(rs, "wall_s"), "cpu_s": med(rs, "cpu_s"),
                      "steps_s": {s: statistics.median(r["steps_s"].get(s, 0) for r in rs)
                                  for s in rs[0]["steps_s"]}} for name, rs in runs.items()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "note": args.note,
            "model": Path(args.model).name, "baseline": args.baseline,
            "repeats": args.repeats, "summary": summary, "runs": runs}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    steps = list(summary["this tree"]["steps_s"])
    lines = [f"`groupnet build {Path(args.model).name} --to-step estimates` (fresh process: "
             f"imports + export + build), median of {args.repeats}, alternating; "
             f"{args.note or 'see the json for the machine'}.", "",
             "| tree | wall | CPU (user + sys) | " + " | ".join(steps) + " |",
             "|---|---|---|" + "---|" * len(steps)]
    for name in ("baseline", "this tree"):
        s = summary[name]
        label = f"baseline `{args.baseline}`" if name == "baseline" else "this tree"
        lines.append(f"| {label} | {s['wall_s']:.1f} s | {s['cpu_s']:.1f} s | "
                     + " | ".join(f"{s['steps_s'].get(k, 0):.1f}" for k in steps) + " |")
    lines.append(f"| speed-up | {summary['baseline']['wall_s'] / summary['this tree']['wall_s']:.2f}x"
                 f" | {summary['baseline']['cpu_s'] / summary['this tree']['cpu_s']:.2f}x | "
                 + " | ".join("" for _ in steps) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
