"""Where runs execute. The driver (``engine.run_sweep``) talks to one interface:

    executor.capacity            how many tasks may be in flight
    executor.submit(task)        task = (key, family, config), or a batch:
                                 ((key, ...), family, [config, ...]) trained together
    executor.poll(timeout)       -> list of Outcome, one per run of the tasks that ended

Workers never touch the database: they return outcomes and the driver
records them. Implementations: :class:`InProcess` (no subprocess: tests,
debugging), :class:`LocalPool` (the default: one process per share of the
cores, data loaded once per process) and ``RayExecutor`` in
:mod:`scalinglab.sweep.ray_executor`.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any

# (run key, family spec or (in-process only) the Family object, config); a batch has a tuple of keys
# and a list of configs, which the family's ``train_batch`` trains as one computation.
Task = tuple[Any, Any, Any]


def task_runs(task: Task) -> list[tuple[str, dict]]:
    """(key, config) of every run in a task."""
    keys, _, configs = task
    return list(zip(keys, configs)) if isinstance(keys, tuple) else [(keys, configs)]


def failed(task: Task, error: str, wall_s: float = 0.0) -> list["Outcome"]:
    """The same failure for every run of a task."""
    return [Outcome(key, error=error, wall_s=wall_s) for key, _ in task_runs(task)]

# glibc: serve big tensors from the heap and keep freed memory, instead of an
# mmap + page faults for every activation of every step.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 31)}


@dataclass
class Outcome:
    key: str
    result: dict | None = None  # RunResult.to_dict() on success
    error: str | None = None  # traceback text on failure
    wall_s: float = 0.0
    info: dict = field(default_factory=dict)


class WorkerState:
    """Per-process cache: the data a family needs, loaded once per data key."""

    def __init__(self):
        self.data_key: Any = object()
        self.data: Any = None

    def run(self, task: Task) -> list[Outcome]:
        """Train the task's runs; a batch that fails is retried run by run, so a bad run fails alone."""
        from scalinglab.sweep.family import get_family

        runs = task_runs(task)
        family_name = task[1]
        start = time.perf_counter()
        try:
            family = get_family(family_name) if isinstance(family_name, str) else family_name
            data_key = family.data_key(runs[0][1])
            if data_key != self.data_key:
                self.data, self.data_key = family.load_data(runs[0][1]), data_key
                start = time.perf_counter()  # wall time is training time; loading is shared
            if len(runs) > 1:
                try:
                    results = family.train_batch([config for _, config in runs], self.data)
                    wall = (time.perf_counter() - start) / len(runs)  # each run's share of the batch
                    return [Outcome(key, result=r.to_dict(), wall_s=wall) for (key, _), r in zip(runs, results)]
                except Exception:
                    return [out for run in runs for out in self.run((run[0], family_name, run[1]))]
            result = family.train(runs[0][1], self.data)
            return [Outcome(runs[0][0], result=result.to_dict(), wall_s=time.perf_counter() - start)]
        except Exception:  # the run failed; the sweep goes on
            return failed(task, traceback.format_exc(limit=8), time.perf_counter() - start)


class InProcess:
    """Runs each task in the calling process, one at a time."""

    capacity = 1

    def __init__(self, threads: int | None = None):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.state = WorkerState()
        self.done: list[Outcome] = []

    def submit(self, task: Task) -> None:
        self.done.extend(self.state.run(task))

    def poll(self, timeout: float) -> list[Outcome]:
        done, self.done = self.done, []
        return done

    def close(self) -> None:
        pass


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the driver dies (no orphaned workers)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _worker_main(conn, threads: int) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides what Ctrl-C means
    import torch

    torch.set_num_threads(threads)
    state = WorkerState()
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        conn.send(state.run(task))


class _Worker:
    def __init__(self, ctx, threads: int):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, threads), daemon=True)
        saved = {k: os.environ.get(k) for k in MALLOC_ENV}
        os.environ.update(MALLOC_ENV)  # inherited by the spawned worker only
        try:
            self.process.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        self.task: Task | None = None


class LocalPool:
    """Up to ``workers`` single-purpose processes on this machine, ``threads`` torch threads each.

    A process starts only when a task finds no idle one, so a sweep with fewer
    runs than workers starts one process per run, not ``workers`` of them
    (each costs about 1 GB once torch and the data are loaded).
    """

    def __init__(self, workers: int = 2, threads: int | None = None):
        self.capacity = workers
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self.ctx = mp.get_context("spawn")
        self.workers: list[_Worker] = []

    def submit(self, task: Task) -> None:
        worker = next((w for w in self.workers if w.task is None), None)
        if worker is None:
            if len(self.workers) >= self.capacity:
                raise RuntimeError(f"all {self.capacity} workers are busy")  # the driver never over-submits
            worker = _Worker(self.ctx, self.threads)
            self.workers.append(worker)
        worker.task = task
        worker.conn.send(task)

    def poll(self, timeout: float) -> list[Outcome]:
        busy = [w for w in self.workers if w.task is not None]
        if not busy:
            return []
        waitables = [w.conn for w in busy] + [w.process.sentinel for w in busy]
        ready = wait(waitables, timeout=timeout)
        outcomes = []
        for worker in busy:
            if worker.conn in ready:
                try:
                    outcomes.extend(worker.conn.recv())
                    worker.task = None
                    continue
                except (EOFError, OSError):
                    pass
            if worker.conn in ready or worker.process.sentinel in ready:
                worker.process.join(1)
                if worker.process.is_alive():
                    continue
                code = worker.process.exitcode
                why = "killed by the out-of-memory killer?" if code == -signal.SIGKILL else "crashed"
                outcomes.extend(failed(worker.task, f"worker process exited with code {code} ({why})"))
                self.workers.remove(worker)  # the next task starts a fresh process in its place
        return outcomes

    def close(self) -> None:
        for w in self.workers:
            try:
                w.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        for w in self.workers:
            w.process.join(timeout=2)
            if w.process.is_alive():
                w.process.kill()
