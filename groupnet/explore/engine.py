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
import signal
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


# what a point process imports before it is forked (once per worker, in the fork server)
POINT_PRELOAD = ["torch", "groupnet.explore.point", "groupnet.flow", "groupnet.hw.build",
                 "groupnet.models.export", "groupnet.models.train"]


def _watch_worker(worker_pid: int) -> None:
    """In a point process: a thread that kills it as soon as its worker is gone (a worker
    killed with SIGKILL runs no clean-up; a point must not train on as an orphan while
    Dask runs it again elsewhere). It waits on a pidfd: no polling, no GIL traffic."""
    import select
    import threading

    def watch() -> None:
        try:
            fd = os.pidfd_open(worker_pid)
        except (AttributeError, OSError):    # no pidfd (old kernel): poll once a second
            while True:
                time.sleep(1.0)
                try:
                    os.kill(worker_pid, 0)
                except ProcessLookupError:
                    break
        else:
            select.select([fd], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True, name="watch-worker").start()


def _point_process(conn, worker_pid: int, fn: Callable, args: tuple) -> None:
    _watch_worker(worker_pid)
    conn.send(guarded(fn, *args))
    conn.close()


def isolated(fn: Callable, *args) -> dict:
    """Run ``guarded(fn, *args)`` in a process of its own, a child of this worker.

    A point computed in a Dask worker process took 40-50% more CPU time than in a plain
    process (measured here: 27 s against 18.6 s of CPU for the same point, with 15x the
    involuntary context switches): the worker's event loop and timers keep taking the GIL
    from the point's thread, and Dask's nanny also sets ``MALLOC_TRIM_THRESHOLD_``, which
    turns off glibc's dynamic mmap threshold. The point process has neither: it is forked
    from a single-threaded fork server that imported the point's code once per worker.
    It ends with its worker (stopped: terminated at the worker's exit; killed: by its
    watcher). If it dies (killed, out of memory), the worker exits too, so that Dask
    treats the point as one on a lost worker: it runs again on another worker, up to
    ``allowed-failures`` times, resuming its training."""
    import multiprocessing
    me = multiprocessing.current_process()
    # Dask starts workers as daemonic processes, which multiprocessing forbids children;
    # this one's end with the worker (see above)
    me._config["daemon"] = False
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(POINT_PRELOAD)
    recv, send = ctx.Pipe(duplex=False)
    env = os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)   # the fork server's allocator
    try:
        proc = ctx.Process(target=_point_process, args=(send, os.getpid(), fn, args),
                           daemon=True, name="groupnet-point")
        proc.start()
    finally:
        if env is not None:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = env
    send.close()
    try:
        result = recv.recv()
    except EOFError:
        proc.join(5)
        logging.getLogger("groupnet.explore").error(
            "the point's process died (exit %s: killed or out of memory); stopping this "
            "worker so that the point runs again on another", proc.exitcode)
        os._exit(1)
    proc.join()
    return result


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
        # worker processes run each point in a process of its own (see isolated); the
        # in-process cluster (tests) runs it in the worker thread
        run = guarded if self.name == "inprocess" else isolated
        fut = self.client.submit(run, task.fn, *task.args, key=task.key, pure=False,
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
