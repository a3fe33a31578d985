"""Where a sweep's points run: in this process one by one, or on Dask (a LocalCluster of
one single-threaded worker per core by default, an existing scheduler, or Slurm through
dask-jobqueue), and the loop that submits points, records each result the moment it
arrives, and shows points done / running / failed.

Failures, by kind:
- a point raising an error (a bad option, a model that does not export, a tool missing)
  comes back as a ``failed`` row with the error; the sweep goes on;
- a worker lost mid-point (killed, out of memory, its node gone) is Dask's to handle: the
  scheduler runs the point again on another worker (up to ``distributed.scheduler.
  allowed-failures`` times, default 3: then it is recorded as failed, "worker lost"); the
  retry resumes the point's training from its last checkpoint;
- the sweep itself stopped (Ctrl-C, end of a session): every finished point is in
  ``results.jsonl`` already; the same command again runs only what is missing.
Only the driver (this process) records, once per point, however often a point ran.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

EXECUTORS = ("local", "serial", "inprocess", "scheduler", "slurm")


@dataclass
class Task:
    key: str                    # unique per sweep: what Dask calls the task too
    fn: Callable
    args: tuple
    label: str
    resources: dict = field(default_factory=dict)


def guarded(fn: Callable, *args) -> dict:
    """Run a task function in a worker; an exception becomes a failure record (the
    worker survives it, the sweep records it)."""
    try:
        return {"ok": True, "value": fn(*args)}
    except Exception as err:  # noqa: BLE001 - any error of one point must not stop the sweep
        return {"ok": False, "error": f"{type(err).__name__}: {err}".strip(),
                "traceback": traceback.format_exc(limit=20)}


class SerialExecutor:
    """In this process, one task at a time (the baseline, and the no-Dask fallback)."""
    name = "serial"
    workers = 1

    def __init__(self):
        self.queue: list[Task] = []

    def submit(self, task: Task) -> None:
        self.queue.append(task)

    def pending(self) -> int:
        return len(self.queue)

    def running(self) -> list[str]:
        return [self.queue[0].label] if self.queue else []

    def next_done(self, timeout: float | None = None):
        task = self.queue.pop(0)
        return task, guarded(task.fn, *task.args)

    def close(self) -> None:
        pass


class DaskExecutor:
    """Tasks on a Dask cluster; ``next_done`` returns the first to finish."""

    def __init__(self, kind: str = "local", workers: int | None = None,
                 address: str | None = None, slurm_jobs: int = 1,
                 cluster_options: dict | None = None, vivado_slots: int = 1):
        import dask
        from distributed import Client, LocalCluster
        self.name = kind
        self.cluster = None
        quiet = logging.ERROR
        # a lost worker's task is rerun this many times before it is called failed
        dask.config.set({"distributed.scheduler.allowed-failures": 3,
                         # no statistical profiler sampling the running point's stack
                         # (the dashboard's profile, which a sweep does not show)
                         "distributed.worker.profile.enabled": False})
        if kind == "scheduler":
            if not address:
                raise ValueError("the 'scheduler' executor needs an address")
            self.client = Client(address)
        elif kind == "slurm":
            self.cluster = slurm_cluster(cluster_options or {}, vivado_slots)
            self.cluster.scale(jobs=slurm_jobs)
            self.client = Client(self.cluster)
        else:
            n = workers or os.cpu_count() or 1
            self.cluster = LocalCluster(
                n_workers=n if kind == "local" else 1, threads_per_worker=1,
                processes=(kind == "local"), dashboard_address=None, silence_logs=quiet,
                resources={"vivado": vivado_slots})
            self.client = Client(self.cluster)
        self.futures: dict = {}            # future -> Task

    @property
    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def submit(self, task: Task) -> None:
        fut = self.client.submit(guarded, task.fn, *task.args, key=task.key, pure=False,
                                 resources=task.resources or None)
        self.futures[fut] = task

    def pending(self) -> int:
        return len(self.futures)

    def running(self) -> list[str]:
        """Labels of the tasks a worker is processing now."""
        try:
            info = self.client.scheduler_info()["workers"]
            processing = self.client.processing()
        except Exception:  # noqa: BLE001 - a display detail; the scheduler may be busy
            return []
        busy = set()
        for addr, keys in processing.items():   # a worker may hold more than it runs
            busy |= set(list(keys)[:info.get(addr, {}).get("nthreads", 1)])
        return [t.label for f, t in self.futures.items() if f.key in busy]

    def next_done(self, timeout: float | None = 2.0):
        """(task, result) of a finished task, or None after ``timeout`` seconds."""
        from distributed import wait
        try:
            done = wait(list(self.futures), timeout=timeout, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            return None
        if not done:
            return None
        fut = next(iter(done))
        task = self.futures.pop(fut)
        try:
            result = fut.result()
        except Exception as err:  # noqa: BLE001 - KilledWorker and kin: the worker was lost
            result = {"ok": False, "error": f"worker lost ({type(err).__name__}: {err}); "
                                            "out of memory? see the worker's log",
                      "traceback": ""}
        fut.release()
        return task, result

    def close(self) -> None:
        for f in list(self.futures):
            f.cancel()
        self.futures.clear()
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def slurm_cluster(options: dict, vivado_slots: int = 1):
    """A dask-jobqueue SLURMCluster (jobs are submitted by ``scale``); its workers carry
    ``vivado`` slots so that at most that many Vivado builds share one job's memory.
    ``options``: SLURMCluster's own (cores, memory, queue, walltime, account, ...)."""
    from groupnet.errors import UserError
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise UserError("--slurm needs dask-jobqueue (pip install dask-jobqueue)") from None
    opts = {"cores": 1, "memory": "16GB", "processes": 1, **options}
    extra = list(opts.pop("worker_extra_args", []))
    extra += ["--resources", f"vivado={vivado_slots}"]
    return SLURMCluster(worker_extra_args=extra, **opts)


def make_executor(kind: str = "local", workers: int | None = None, address: str | None = None,
                  slurm_jobs: int = 1, cluster_options: dict | None = None):
    if kind == "serial":
        return SerialExecutor()
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor '{kind}'; one of {', '.join(EXECUTORS)}")
    return DaskExecutor(kind, workers, address, slurm_jobs, cluster_options)


def drain(executor, on_done: Callable[[Task, dict], None], progress=None,
          refill: Callable[[], None] | None = None) -> None:
    """Wait for every submitted task, calling ``on_done`` for each as it finishes;
    ``refill`` may submit more (a search asks for new points as results come in)."""
    last = 0.0
    while executor.pending():
        item = executor.next_done(timeout=2.0)
        if item is not None:
            on_done(*item)
            if refill is not None:
                refill()
        if progress is not None and time.time() - last > 1.0:
            progress(executor.running())
            last = time.time()
