"""``run_sweep``: a spec's points on an executor, results recorded as they finish, then
the simulation of the front's points, then the front's table and picture.

Output folder::

    OUT/spec.yaml           the spec the sweep last ran with (a copy)
    OUT/results.jsonl       one line per finished evaluation or simulation (store.py)
    OUT/front.md, .json     per board: every built point, the Pareto front first
    OUT/front.png           accuracy against LUT and FPS per board
    OUT/points/<key>/       each point's training run, model and builds (point.py)
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from groupnet.outdir import check_output, lock, read_marker, write_marker

from . import pareto
from .engine import Task, drain, make_executor
from .point import evaluate_point, simulate_row
from .spec import Point, Spec, select_points
from .store import ResultStore


def _point_task(spec: Spec, point: Point, out: Path, boards: list[str],
                threads: int | None) -> Task:
    return Task(key=f"point-{point.key}", fn=evaluate_point,
                args=(spec, point, str(out), boards, threads), label=point.label,
                resources={"vivado": 1} if spec.needs_vivado else {})


def _failed_rows(spec: Spec, point: Point, boards: list[str], result: dict) -> list[dict]:
    return [{"key": spec.evaluation_key(point, b), "point": point.key, "label": point.label,
             "variant": point.variant, "model": point.model, "train": point.train,
             "board": b, "status": "failed", "error": result["error"],
             "traceback": result.get("traceback", ""), "k": point.model.get("k", 1),
             "width": point.model.get("width"), "agg_bits": point.model.get("agg_bits"),
             "origin": "-", "quality": None} for b in boards]


class Sweep:
    """The state of one sweep folder: its store, its executor, its progress line."""

    def __init__(self, spec: Spec, out: str | Path, executor, progress: bool = True,
                 retry_failed: bool = False, threads: int | None = 1):
        self.spec, self.out = spec, Path(out)
        self.store = ResultStore(self.out)
        self.executor, self.retry_failed, self.threads = executor, retry_failed, threads
        self.show = progress
        self.counts = {"done": 0, "failed": 0, "total": 0}
        self.t0 = time.time()

    # ---------------------------------------------------------------- progress
    def log(self, text: str) -> None:
        if self.show:
            clear = "\r\x1b[K" if sys.stderr.isatty() else ""
            print(f"{clear}[{time.time() - self.t0:6.0f} s] {text}", file=sys.stderr,
                  flush=True)

    def status(self, running: list[str]) -> None:
        if not (self.show and sys.stderr.isatty()):     # a log file gets the lines only
            return
        c = self.counts
        queued = c["total"] - c["done"] - c["failed"] - len(running)
        line = (f"points {c['done']}/{c['total']} done, {len(running)} running, "
                f"{max(0, queued)} queued, {c['failed']} failed")
        if running:
            line += ": " + ", ".join(running)[:70]
        print(f"\r\x1b[K{line}", end="", file=sys.stderr, flush=True)

    # ---------------------------------------------------------------- points
    def todo(self, point: Point) -> list[str]:
        """The boards still to evaluate for ``point`` (none: it is done)."""
        keys = {b: self.spec.evaluation_key(point, b) for b in self.spec.boards or ["-"]}
        # a float model has one board-less row, as has every point of a train-only spec
        ref = self.store.get("eval", self.spec.evaluation_key(point, "-"))
        if ref is not None and ref["status"] == "reference":
            return []
        return [b for b, k in keys.items() if not self.store.done(k, self.retry_failed)]

    def submit(self, point: Point) -> bool:
        boards = self.todo(point)
        if not boards:
            return False
        self.counts["total"] += 1
        self.executor.submit(_point_task(self.spec, point, self.out, boards, self.threads))
        return True

    def record(self, task: Task, result: dict) -> list[dict]:
        spec, point, _, boards, _ = task.args
        if result["ok"]:
            rows = result["value"]
            self.counts["done"] += 1
        else:
            rows = _failed_rows(spec, point, boards, result)
            self.counts["failed"] += 1
        for row in rows:
            self.store.add("eval", row)
        self.log(describe(point, rows))
        if _STOP["requested"]:        # a stop that the point's code swallowed
            raise KeyboardInterrupt
        return rows

    # ---------------------------------------------------------------- stages
    def run_points(self, points: list[Point]) -> None:
        skipped = sum(0 if self.submit(p) else 1 for p in points)
        if skipped:
            self.log(f"{skipped} of {len(points)} points already in {self.store.path}")
        drain(self.executor, self.record, self.status)

    def run_simulations(self) -> None:
        sim = self.spec.simulate
        if sim["points"] == "none":
            return
        rows = [r for r in self.rows() if r["status"] == "ok"]
        if sim["points"] == "front":
            wanted = {r["key"] for f in pareto.fronts(rows).values() for r in f}
            rows = [r for r in rows if r["key"] in wanted]
        rows = [r for r in rows if self.store.get("sim", r["key"]) is None
                and self.spec.boards.count(r["board"])]
        if not rows:
            return
        self.counts = {"done": 0, "failed": 0, "total": len(rows)}
        self.log(f"simulating {len(rows)} point(s) in Verilator ({sim['frames']} frames each)")
        for r in rows:
            self.executor.submit(Task(key=f"sim-{r['key']}", fn=simulate_row,
                                      args=(r, sim["frames"]), label=f"sim {r['label']}"))

        def done(task: Task, result: dict) -> None:
            row = task.args[0]
            if result["ok"]:
                rec = self.store.add("sim", result["value"])
                self.counts["done"] += 1
                self.log(f"simulated {row['label']} on {row['board']}: {rec['sim_fps']:,.0f} "
                         f"FPS (est. {row['fps_est']:,.0f}), "
                         f"{'bit-exact' if rec['bit_exact'] else 'MISMATCH'}")
            else:
                self.counts["failed"] += 1
                self.log(f"simulation of {row['label']} on {row['board']} failed: "
                         f"{result['error']}")
        drain(self.executor, done, self.status)

    def rows(self) -> list[dict]:
        """This sweep's rows: a grid's are its spec's points (the folder may hold older
        ones); a search's, everything it evaluated."""
        rows = self.store.rows()
        if not self.spec.search:
            rows = [r for r in rows if r["key"] in self.current_keys()]
        return rows

    def write_front(self) -> dict:
        from .point import shape_of
        rows = [{**r, **shape_of(r["variant"], r["model"])} for r in self.rows()]
        sims = {r["key"]: r for r in self.store.rows("sim")}
        (self.out / "front.md").write_text(pareto.table(rows, sims))
        fr = pareto.fronts(rows)
        summary = {"spec": str(self.spec.path), "name": self.spec.name,
                   "points": len(self.spec.points), "boards": self.spec.boards,
                   "rows": rows, "simulations": sims,
                   "front": {b: [r["key"] for r in f] for b, f in fr.items()}}
        (self.out / "front.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
        if any(r["status"] == "ok" and r.get("quality") is not None for r in rows):
            pareto.plot(rows, self.out / "front.png", sims)
        return summary

    def current_keys(self) -> set[str]:
        keys = set()
        for p in self.spec.points:
            keys |= {self.spec.evaluation_key(p, b) for b in [*self.spec.boards, "-"]}
        return keys


def describe(point: Point, rows: list[dict]) -> str:
    if rows and rows[0]["status"] == "failed":
        return f"FAILED {point.label}: {rows[0]['error'][:160]}"
    r0 = rows[0]
    q = ("untrained" if r0.get("quality") is None else
         f"{r0['metric']} {100 * r0['quality']:.2f}%" if r0["metric"] == "accuracy"
         else f"{r0['metric']} {r0['quality']:.3f}")
    hw = "; ".join(
        f"{r['board']} {r['fps_est']:,.0f} FPS {r['lut']:,} LUT" if r["status"] == "ok"
        else f"{r['board']} does not fit" for r in rows
        if r["status"] not in ("reference", "trained"))
    return f"done {point.label}: {q} ({r0['origin']})" + (f"; {hw}" if hw else "")


# set by SIGTERM: a stop that library code swallowed (a bare `except:` in a FINN pass while
# a serial sweep builds a point) still stops the sweep once that point is recorded
_STOP = {"requested": False}


def _term_as_interrupt():
    """SIGTERM (a batch system's stop, `kill`) stops a sweep as Ctrl-C does: the cluster
    is closed, its Slurm jobs cancelled, finished results kept. Returns the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    _STOP["requested"] = False

    def stop(signum, frame):
        _STOP["requested"] = True
        raise KeyboardInterrupt
    return signal.signal(signal.SIGTERM, stop)


def run_sweep(spec: Spec, out: str | Path | None = None, executor: str = "local",
              workers: int | None = None, scheduler: str | None = None,
              slurm_jobs: int = 1, cluster_options: dict | None = None,
              progress: bool = True, retry_failed: bool = False,
              threads: int | None = 1, only: list[str] | None = None) -> dict:
    """Evaluate every point of ``spec`` not yet in ``out`` (default ``runs/explore/<name>``),
    simulate as the spec says, write the front; returns the front's summary. ``only``:
    just these points (keys or labels, ``select_points``); the front then shows them."""
    if only:
        spec = select_points(spec, only)
    out = Path(out or Path("runs") / "explore" / spec.name)
    # a sweep folder (or a new one) only: never a foreign folder, one sweep at a time
    check_output(out, "explore")
    held = lock(out)
    try:
        if read_marker(out) is None:
            write_marker(out, "explore", spec=spec.name)
        return _run_sweep(spec, out, executor, workers, scheduler, slurm_jobs,
                          cluster_options, progress, retry_failed, threads)
    finally:
        held.release()


def _run_sweep(spec: Spec, out: Path, executor, workers, scheduler, slurm_jobs,
               cluster_options, progress, retry_failed, threads) -> dict:
    if spec.path.resolve() != (out / "spec.yaml").resolve():
        shutil.copyfile(spec.path, out / "spec.yaml")
    ex = make_executor(executor, workers, scheduler, slurm_jobs, cluster_options)
    sweep = Sweep(spec, out, ex, progress, retry_failed, threads)
    previous = _term_as_interrupt()
    try:
        what = (f"{spec.search['trials']} trials" if spec.search
                else f"{len(spec.points)} points")
        sweep.log(f"sweep '{spec.name}': {what} x {len(spec.boards)} "
                  f"board(s) on {ex.name} ({ex.workers} worker(s)); results in {out}")
        if spec.search:
            from .search import run_search
            run_search(sweep)
        else:
            sweep.run_points(spec.points)
        sweep.run_simulations()
    finally:
        if progress and sys.stderr.isatty():
            print(file=sys.stderr)
        ex.close()                    # workers stopped, Slurm jobs cancelled
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    summary = sweep.write_front()
    summary["wall_seconds"] = time.time() - sweep.t0
    summary["executor"] = ex.name
    return summary
