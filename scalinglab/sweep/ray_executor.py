"""Runs on a Ray cluster, behind the same interface as the local pool.

One Ray actor per worker (``num_cpus=1`` each, one torch thread), each
keeping the last data set it was handed. The driver loads a family's data
once per data key, puts it in Ray's object store once (``ray.put``) and sends
every task a reference to it: an actor fetches the data on its first task
with that key, never per task. Actors return one :class:`Outcome` per run; only the
driver writes the database, so the database stays on the driver's machine.

A run whose actor dies (a crash, the out-of-memory killer, a lost node)
comes back as a failed Outcome with the reason, and a fresh actor takes the
dead one's place; the sweep goes on. Actors start only when a run needs one,
so a sweep with fewer runs than workers starts one actor per run.

Without ``address`` the executor starts a private Ray for this process, with
token authentication on whatever ``RAY_AUTH_MODE`` says (Ray >= 2.52): Ray's
GCS, raylet and worker servers listen on every interface (Ray 2.60 has no
setting to bind them to loopback; its change that would, ray-project/ray#59852,
was reverted in #60012), so the token is what keeps other machines out.

    executor = RayExecutor(workers=4, address="head-node:6379")  # or None: a local Ray
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from scalinglab.errors import ConfigError
from scalinglab.sweep.executors import MALLOC_ENV, Outcome, Task, WorkerState, failed, task_runs

RAY_HINT = "--executor ray needs Ray: pip install 'scalinglab[ray]'"
AUTH_MODE = "RAY_AUTH_MODE"  # "token": every RPC to the cluster must carry its token (Ray >= 2.52)
# The driver's values of these go to every actor (a family's sweep_context may set them, e.g. the LM
# family's checkpoint folder; on a cluster it must be a path every node sees).
FORWARDED_ENV = ("SCALINGLAB_CHECKPOINT_DIR",)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_HINT) from None
    return ray


class _Actor:
    """The body of one Ray actor: a ``WorkerState`` whose data comes from the object store."""

    def __init__(self, threads: int = 1):
        import torch

        torch.set_num_threads(threads)
        self.state = WorkerState()

    def run(self, task: Task, data_key: Any, boxed_ref: list) -> list[Outcome]:
        # The ref arrives boxed in a list so Ray does not fetch (and deserialise) the
        # data for every task; it is fetched here, only when the data key changes.
        try:
            if boxed_ref and data_key != self.state.data_key:
                import ray

                self.state.data = None  # free the old set before fetching the new one
                self.state.data = ray.get(boxed_ref[0])
                self.state.data_key = data_key
        except Exception as exc:  # reported as the run's error
            return failed(task, f"could not fetch the run's data from Ray's object store: {exc!r}")
        return self.state.run(task)

    def pid(self) -> int:
        return os.getpid()


class RayExecutor:
    """``workers`` Ray actors (0: one per CPU of the cluster), on a local Ray or at ``address``."""

    def __init__(self, workers: int = 2, address: str | None = None):
        ray = self.ray = _import_ray()
        self.owns_ray = False
        self.saved_auth_mode: str | None = None
        if not ray.is_initialized():
            if address:
                _check_reachable(address)  # ray.init would retry a wrong address for minutes
                try:
                    ray.init(address=address, logging_level=logging.WARNING)
                except ConnectionError as exc:
                    raise ConfigError(_unreachable(address, exc)) from None
            else:
                self.saved_auth_mode = os.environ.get(AUTH_MODE)
                _set_auth_mode("token")
                try:
                    ray.init(num_cpus=workers or None, include_dashboard=False, logging_level=logging.WARNING)
                except BaseException:
                    _set_auth_mode(self.saved_auth_mode)
                    raise
            self.owns_ray = True
        self.capacity = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.actor_class = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_Actor)
        self.actors: list[Any] = []  # started on demand, up to capacity
        self.busy: list[Task | None] = []  # the task of each actor
        self.in_flight: dict[Any, int] = {}  # ObjectRef -> actor index
        self.data_refs: list[tuple[Any, Any]] = []  # (data key, ObjectRef), one per data set
        self.ready: list[Outcome] = []  # outcomes known without asking Ray

    def _new_actor(self):
        return self.actor_class.options(runtime_env=actor_runtime_env()).remote(1)

    def _data_ref(self, family_name: str, config: dict) -> tuple[Any, Any]:
        """(data key, object-store ref) of the run's data, loaded and put once per key."""
        from scalinglab.sweep.family import get_family

        family = get_family(family_name)
        key = family.data_key(config)
        for known, ref in self.data_refs:
            if known == key:
                return key, ref
        ref = self.ray.put(family.load_data(config))
        self.data_refs.append((key, ref))
        return key, ref

    def submit(self, task: Task) -> None:
        if None not in self.busy:
            if len(self.actors) >= self.capacity:
                raise RuntimeError(f"all {self.capacity} actors are busy")  # the driver never over-submits
            self.actors.append(self._new_actor())
            self.busy.append(None)
        i = self.busy.index(None)
        start = time.perf_counter()
        try:
            data_key, ref = self._data_ref(task[1], task_runs(task)[0][1])
        except Exception as exc:  # the runs fail, the sweep goes on
            self.ready.extend(failed(task, f"loading the run's data failed: {exc!r}", time.perf_counter() - start))
            return
        self.busy[i] = task
        self.in_flight[self.actors[i].run.remote(task, data_key, [ref])] = i

    def poll(self, timeout: float) -> list[Outcome]:
        outcomes, self.ready = self.ready, []
        if not self.in_flight:
            return outcomes
        refs = list(self.in_flight)
        first, _ = self.ray.wait(refs, num_returns=1, timeout=0 if outcomes else timeout)
        if not first:
            return outcomes
        done, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in done:
            i = self.in_flight.pop(ref)
            task, self.busy[i] = self.busy[i], None
            try:
                outcomes.extend(self.ray.get(ref))
            except self.ray.exceptions.RayError as exc:
                outcomes.extend(failed(task, _death_message(exc)))
                self._replace(i)
        return outcomes

    def _replace(self, i: int) -> None:
        try:
            self.ray.kill(self.actors[i], no_restart=True)
        except Exception:  # already gone
            pass
        self.actors[i] = self._new_actor()

    def worker_pids(self) -> list[int]:
        """The process id of each actor (tests kill them to check recovery)."""
        return self.ray.get([a.pid.remote() for a in self.actors])

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # already gone, or Ray is down
                pass
        self.actors, self.busy, self.in_flight, self.data_refs = [], [], {}, []
        if self.owns_ray and self.ray.is_initialized():
            self.ray.shutdown()
            _set_auth_mode(self.saved_auth_mode)


def actor_runtime_env() -> dict:
    """Each actor's runtime env: the local pool's malloc settings and the driver's ``FORWARDED_ENV``.

    Ray merges ``env_vars`` with the job's runtime env. Read when an actor
    starts, so it carries what the sweep's context has set by then.
    """
    env = {**MALLOC_ENV, **{k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}}
    return {"env_vars": env}


def _set_auth_mode(mode: str | None) -> None:
    """Set (None: unset) ``RAY_AUTH_MODE`` for this process and the Ray processes it starts.

    Ray reads the variable once, at import; ``Config.initialize`` makes it
    read it again, as Ray's own token setup does.
    """
    if mode is None:
        os.environ.pop(AUTH_MODE, None)
    else:
        os.environ[AUTH_MODE] = mode
    try:
        from ray._raylet import Config

        Config.initialize("")
    except (ImportError, AttributeError):  # a Ray whose config has no such call reads the variable late
        pass


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, with a ConfigError, when nothing listens at a ``host:port`` address."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and other forms: Ray decides
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(_unreachable(address, exc)) from None


def _unreachable(address: str, exc: Exception) -> str:
    return (f"--address {address}: cannot connect to a Ray cluster there ({exc}); check `ray status` "
            "on the head node, or start one with `ray start --head`")


def _death_message(exc: Exception) -> str:
    """One readable line for a run whose Ray worker died, then Ray's own account."""
    import ray

    if isinstance(exc, ray.exceptions.OutOfMemoryError):
        why = "killed by Ray's memory monitor: the node ran out of memory; use fewer workers per node"
    elif isinstance(exc, ray.exceptions.RayActorError):
        why = ("its process died: it crashed, was killed (e.g. by the out-of-memory killer), "
               "or its node was lost")
    else:
        why = "Ray could not run it"
    return f"Ray worker died while running this run ({type(exc).__name__}: {why})\n{str(exc).strip()[:2000]}"
