"""The sweep driver: register runs, schedule them longest-first, record results.

``run_sweep`` is idempotent: calling it again with the same configs re-runs
only what has not finished (see the guarantees in :mod:`scalinglab.store`).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

from scalinglab.errors import ConfigError
from scalinglab.provenance import code_version, library_versions
from scalinglab.store import TAKEN_OVER, RunStore, make_owner
from scalinglab.sweep.eta import EtaModel, format_seconds
from scalinglab.sweep.executors import InProcess, LocalPool
from scalinglab.sweep.family import Family, resolve_family

HEARTBEAT_SECONDS = 20.0
MAX_BATCH = 6  # runs per batched task (the full MNIST preset has 6 per setting: 3 seeds x 2 dropouts)


@dataclass
class SweepSummary:
    """What one call of ``run_sweep`` did."""

    ran: int  # runs trained in this call
    skipped: int  # already finished before the call
    failed: int
    diverged: int
    wall_s: float
    flops: float  # training FLOPs of the runs trained in this call
    held: int = 0  # left alone because another driver held them (they finish there)
    taken_over: int = 0  # trained here, but another driver took them over and finished first

    @property
    def gflops_per_s(self) -> float:
        return self.flops / self.wall_s / 1e9 if self.wall_s > 0 else 0.0

    def describe(self) -> str:
        text = (f"{self.ran} runs trained, {self.skipped} already finished, {self.failed} failed, "
                f"{self.diverged} diverged; {self.wall_s:.1f} s, {self.gflops_per_s:.1f} GFLOP/s")
        if self.held:
            text += (f"\n{self.held} runs skipped: another driver holds them and finishes them there "
                     "(re-run this command later to collect any it leaves)")
        if self.taken_over:
            text += (f"\n{self.taken_over} runs were taken over by another driver while this one paused past "
                     "its lease; that driver's results are kept")
        if self.failed:
            text += "\nre-run the same command to retry the failed runs (see `scalinglab runs --status failed`)"
        return text


def make_executor(executor: str, workers: int, address: str | None = None):
    if executor == "local":
        return InProcess() if workers == 0 else LocalPool(workers)
    if executor == "ray":
        from scalinglab.sweep.ray_executor import RayExecutor

        return RayExecutor(workers=workers, address=address)
    raise ConfigError(f"executor = {executor!r} is invalid: must be 'local' or 'ray'")


class _Heartbeat:
    """Renews the driver's leases every ``HEARTBEAT_SECONDS`` from a thread with its own connection.

    A thread, so the lease stays fresh also while a run trains in the driver
    itself (``workers=0``), which blocks the sweep loop for the whole run.
    """

    def __init__(self, path, owner: str):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, args=(path, owner), daemon=True,
                                       name="scalinglab-heartbeat")
        self.thread.start()

    def _beat(self, path, owner: str) -> None:
        with RunStore(path) as store:
            while not self.stop.wait(HEARTBEAT_SECONDS):
                store.heartbeat(owner)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def run_sweep(store: RunStore, study: str, family: str | Family, configs: list[dict], *,
              workers: int = 2, executor: str = "local", address: str | None = None,
              progress: bool = True, info: dict | None = None, max_batch: int = MAX_BATCH) -> SweepSummary:
    """Run every config of ``study`` that has not finished; returns a summary.

    ``family`` is a Family object, a registered name (``"mnist_cnn"``,
    ``"lm"``) or ``"module:attribute"``; its declared ``name`` is stored and
    hashed into the run keys. ``workers=0`` trains in this process (handy in
    notebooks and tests, and the only way to run a family defined in
    ``__main__`` or a notebook cell, which worker processes cannot import).

    A family with ``batch_key(config)`` and ``train_batch(configs, data)``
    gets up to ``max_batch`` runs with the same (non-None) key in one task,
    trained as one computation; ``max_batch=1`` trains every run alone.
    """
    if not configs:
        raise ConfigError("the sweep grid is empty: give at least one width, fraction and seed")
    fam, spec = resolve_family(family)
    if spec is None and not (executor == "local" and workers == 0):
        raise ConfigError(f"family {fam.name!r} is defined where worker processes cannot import it (__main__ or "
                          "a notebook); move it into a module and pass it as 'module:attribute', or use workers=0")
    costs = [fam.cost(c) for c in configs]  # also validates every config before any run starts
    keys = store.add_study(study, fam.name, configs, costs, {**(info or {}), "family_spec": spec})
    todo = store.unfinished(study)
    skipped = len(set(keys)) - len(todo)
    counts = {"complete": 0, "failed": 0, "diverged": 0, TAKEN_OVER: 0, "held": 0}
    flops_done = 0.0
    start = time.perf_counter()
    if not todo:
        return SweepSummary(0, skipped, 0, 0, 0.0, 0.0)

    owner = make_owner()
    steps = getattr(fam, "steps", lambda config: 0)
    features = {key: EtaModel.features(cost, steps(config)) for key, config, cost in todo}
    pool = make_executor(executor, workers, address)
    eta = EtaModel(pool.capacity)
    bar = _progress(len(todo), progress)
    bar.set_postfix_str(f"ETA {format_seconds(eta.remaining(list(features.values())))} (first guess)")
    ref = spec if spec is not None else fam  # workers import the spec; in-process runs take the object
    batch_key = getattr(fam, "batch_key", None) if max_batch > 1 else None
    queue = [(key, config, batch_key(config) if batch_key else None) for key, config, _ in todo]
    in_flight: dict[str, int] = {}  # run key -> the number of the task it went out in
    n_tasks = 0
    heartbeat = _Heartbeat(store.path, owner)
    try:
        while queue or in_flight:
            while queue and len(set(in_flight.values())) < pool.capacity:
                runs = _next_batch(queue, max_batch)
                claimed = [(key, config) for key, config in runs if store.claim(key, owner)]  # another driver may hold some
                counts["held"] += len(runs) - len(claimed)
                bar.update(len(runs) - len(claimed))
                if not claimed:
                    continue
                keys = [key for key, _ in claimed]
                n_tasks += 1
                in_flight.update(dict.fromkeys(keys, n_tasks))
                pool.submit((keys[0], ref, claimed[0][1]) if len(claimed) == 1
                            else (tuple(keys), ref, [config for _, config in claimed]))
            for out in pool.poll(timeout=1.0):
                in_flight.pop(out.key, None)
                if out.result is not None:
                    status = store.finish(out.key, out.result, wall_s=out.wall_s, owner=owner,
                                          code_version=code_version(), versions=library_versions())
                    if status == TAKEN_OVER:
                        print(f"\nrun {out.key}: another driver took it over (this driver's lease expired "
                              "while it trained) and finished it first; its result is kept", file=sys.stderr)
                    flops_done += out.result["flops"]
                    eta.observe(features[out.key], out.wall_s)
                else:
                    status = "failed"
                    error = (out.error or "").strip() or "unknown error"
                    store.fail(out.key, error, owner=owner)
                    print(f"\nrun {out.key} failed: {error.splitlines()[-1]}", file=sys.stderr)
                counts[status] += 1
                bar.update(1)
                left = eta.remaining([features[k] for k, _, _ in queue] + [features[k] for k in in_flight])
                elapsed = time.perf_counter() - start
                bar.set_postfix_str(f"ETA {format_seconds(left)}, {flops_done / elapsed / 1e9:.1f} GFLOP/s"
                                    + (f", {counts['failed']} failed" if counts["failed"] else ""))
    except BaseException:
        store.release(owner)  # a clean interrupt hands its runs back at once
        raise
    finally:
        heartbeat.close()
        pool.close()
        bar.close()
    return SweepSummary(counts["complete"] + counts["diverged"], skipped, counts["failed"],
                        counts["diverged"], time.perf_counter() - start, flops_done,
                        held=counts["held"], taken_over=counts[TAKEN_OVER])


def _next_batch(queue: list[tuple[str, dict, object]], max_batch: int) -> list[tuple[str, dict]]:
    """Pop the queue's first run and up to ``max_batch - 1`` later runs with its (non-None) batch key."""
    key, config, group = queue.pop(0)
    if group is None:
        return [(key, config)]
    batch, rest = [(key, config)], []
    for item in queue:
        if len(batch) < max_batch and item[2] == group:
            batch.append(item[:2])
        else:
            rest.append(item)
    queue[:] = rest
    return batch


def _progress(n_runs: int, enabled: bool):
    """A bar counting runs; the ETA comes from the cost model, not tqdm's run rate."""
    from tqdm import tqdm

    return tqdm(total=n_runs, unit="run", disable=not enabled, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} runs [{elapsed}{postfix}]")
