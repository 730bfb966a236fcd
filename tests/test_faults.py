"""The run store's guarantees under faults: crashed and killed workers, rival drivers, old and new schemas.

Most tests drive ``run_sweep`` with the local process pool and the fake
family in ``tests/faults/families.py`` (runs take ~0.2 s, no training), so
each costs about the start-up of two worker processes.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cli_helpers import kill_after_completions, scalinglab_cmd
from faults.families import NAME as FAULTY, marker_path
from scalinglab import store as store_module
from scalinglab.errors import StoreError
from scalinglab.store import RunStore
from scalinglab.sweep import engine
from scalinglab.sweep.engine import run_sweep
from test_sweep_resume import FLAGS as MNIST_FLAGS

FINE = [{"width": w, "sleep": 0.2} for w in (3, 4, 5, 6)]


def sweep(db, configs, workers=2):
    with RunStore(db) as store:
        summary = run_sweep(store, "s", FAULTY, configs, workers=workers, progress=False)
        return summary, store.runs().set_index("width")


def test_crashed_worker_fails_its_run_and_the_sweep_goes_on(tmp_path):
    configs = [{"width": 1, "fault": "crash", "marker": marker_path(tmp_path, "crash")}, *FINE]
    summary, runs = sweep(tmp_path / "runs.db", configs)
    assert (summary.ran, summary.failed) == (4, 1)
    assert runs.status[1] == "failed" and "worker process exited with code 1" in runs.error[1]
    assert (runs.status.drop(1) == "complete").all()
    finished = runs.drop(1)[["finished", "val_loss"]]

    summary, runs = sweep(tmp_path / "runs.db", configs)  # the same command again: retries the failure
    assert (summary.ran, summary.skipped, summary.failed) == (1, 4, 0)
    assert (runs.status == "complete").all() and runs.attempts[1] == 2
    assert runs.drop(1)[["finished", "val_loss"]].equals(finished)  # completed runs untouched


def test_out_of_memory_fails_the_run_with_a_memory_message(tmp_path):
    configs = [{"width": 1, "fault": "sigkill", "marker": marker_path(tmp_path, "oom")},  # the OOM killer
               {"width": 2, "fault": "memory"},  # a MemoryError inside the run
               *FINE]
    summary, runs = sweep(tmp_path / "runs.db", configs)
    assert (summary.ran, summary.failed) == (4, 2)
    assert "exited with code -9" in runs.error[1] and "out-of-memory" in runs.error[1]
    assert runs.error[2].strip().endswith("MemoryError")
    assert (runs.status.drop([1, 2]) == "complete").all()

    summary, runs = sweep(tmp_path / "runs.db", configs)
    assert runs.status[1] == "complete"  # killed once, fine on retry
    assert runs.status[2] == "failed" and runs.attempts[2] == 2  # still too big: failed again, recorded


def test_sigkill_of_a_worker_mid_run(tmp_path):
    """SIGKILL a worker while its run trains: that run fails, the rest complete, a re-run completes it."""
    pid_file = Path(marker_path(tmp_path, "hang"))
    configs = [{"width": 1, "fault": "hang", "marker": str(pid_file)}, *FINE]
    killed = []

    def kill_the_worker():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = pid_file.read_text() if pid_file.exists() else ""
            if text:
                os.kill(int(text), signal.SIGKILL)
                killed.append(int(text))
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_worker, daemon=True)
    killer.start()
    summary, runs = sweep(tmp_path / "runs.db", configs)
    killer.join()
    assert killed and killed[0] != os.getpid()
    assert (summary.ran, summary.failed) == (4, 1)
    assert runs.status[1] == "failed" and "exited with code -9" in runs.error[1]
    assert (runs.status.drop(1) == "complete").all()

    summary, runs = sweep(tmp_path / "runs.db", configs)
    assert (summary.ran, summary.failed) == (1, 0) and (runs.status == "complete").all()


# ------------------------------------------------------------ rival drivers

CLAIMER = textwrap.dedent("""
    import sys, time
    from scalinglab.store import RunStore
    db, n, me, start_at = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    configs = [{"width": w} for w in range(1, n + 1)]
    result = dict(params=1, flops=1.0, examples=1, val_loss=0.5)
    time.sleep(max(0.0, start_at - time.time()))  # all processes open the new file at once
    with RunStore(db) as store:  # each one creates the schema, or finds it created
        mine = 0
        for key in store.add_study("s", "faults", configs):
            if store.claim(key, f"claimer-{me}"):
                time.sleep(0.01)  # "train"
                store.finish(key, result, wall_s=0.01, code_version="test", versions={})
                mine += 1
    print(mine)
""")


def test_drivers_racing_on_a_new_database_claim_each_run_once(tmp_path):
    """Four processes create, fill and claim one fresh database at the same moment."""
    db, n = tmp_path / "runs.db", 60
    start_at = str(time.time() + 3.0)  # after every interpreter has started
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(db), str(n), str(i), start_at],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    claimed = [int(out) for out, _ in outs]
    assert sum(claimed) == n  # every run claimed by exactly one process
    assert sum(c > 0 for c in claimed) >= 2, f"no race happened: {claimed}"
    with RunStore(db) as store:
        runs = store.runs()
        assert store.integrity_check() == "ok"
    assert len(runs) == n and (runs.status == "complete").all() and (runs.attempts == 1).all()


def test_two_cli_sweeps_at_once_train_each_run_once(tmp_path, cli_env):
    """The same `scalinglab sweep mnist` started twice on one database: no run is trained twice."""
    db = tmp_path / "runs.db"
    cmd = scalinglab_cmd("sweep", "mnist", *MNIST_FLAGS, "--db", str(db), "--workers", "0")
    env = {**cli_env, "OMP_NUM_THREADS": "1"}  # one core each
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    trained = [int(out.split(" runs trained")[0].split()[-1]) for out, _ in outs]
    with RunStore(db) as store:
        runs = store.runs()
        assert store.integrity_check() == "ok"
    assert len(runs) == 12 and (runs.status == "complete").all()
    assert (runs.attempts == 1).all()  # nothing trained twice
    assert sum(trained) == 12, trained


def test_a_run_training_in_the_driver_keeps_its_lease_fresh(tmp_path, monkeypatch):
    """With workers=0 a run blocks the sweep loop while it trains; the heartbeat thread still renews
    its lease, so no rival driver (on another host, where pids mean nothing) takes it over."""
    monkeypatch.setattr(engine, "HEARTBEAT_SECONDS", 0.1)
    _, runs = sweep(tmp_path / "runs.db", [{"width": 1, "sleep": 1.5}], workers=0)
    # the claim stamps the lease at the start; without renewals it would be ~1.5 s older than the finish
    assert runs.finished[1] - runs.heartbeat[1] < 0.5


# ------------------------------------------------------------ schema versions

def _write_v1_database(path) -> str:
    with RunStore(path) as store:
        key = store.add_study("s", "faults", [{"width": 1}, {"width": 2}])[0]
        store.claim(key, "me")
        store.finish(key, dict(params=1, flops=1.0, examples=1, val_loss=0.5), wall_s=1.0,
                     code_version="test", versions={})
    return key


def _pragma(path, name):
    con = sqlite3.connect(path)
    try:
        return con.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        con.close()


def _columns(path) -> set[str]:
    con = sqlite3.connect(path)
    try:
        return {row[1] for row in con.execute("PRAGMA table_info(runs)")}
    finally:
        con.close()


def test_older_schema_is_migrated_in_place(tmp_path, monkeypatch):
    path = tmp_path / "runs.db"
    key = _write_v1_database(path)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(store_module._MIGRATIONS, 1,
                        "ALTER TABLE runs ADD COLUMN note TEXT;\n"
                        "UPDATE runs SET note = 'migrated' WHERE status = 'pending';")
    with RunStore(path) as store:
        runs = store.runs().set_index("key")
        assert store.integrity_check() == "ok"
    assert _pragma(path, "user_version") == 2 and "note" in _columns(path)
    assert runs.status[key] == "complete" and runs.val_loss[key] == 0.5  # the finished run survived
    assert runs.note.drop(key).tolist() == ["migrated"]


def test_a_failing_migration_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "runs.db"
    _write_v1_database(path)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(store_module._MIGRATIONS, 1, "ALTER TABLE runs ADD COLUMN note TEXT;\n"
                                                     "UPDATE no_such_table SET x = 1;")
    with pytest.raises(StoreError, match="not changed"):
        RunStore(path)
    assert _pragma(path, "user_version") == 1 and "note" not in _columns(path)  # one transaction


def test_newer_schema_is_refused_and_left_untouched(tmp_path, monkeypatch):
    path = tmp_path / "runs.db"
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(store_module._MIGRATIONS, 1, "ALTER TABLE runs ADD COLUMN note TEXT;")
    _write_v1_database(path)  # written by a "newer scalinglab" (version 2)
    monkeypatch.undo()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="schema version 2, newer than this scalinglab's 1; upgrade"):
        RunStore(path)
    assert path.read_bytes() == before


def test_missing_migration_step_is_a_clear_error(tmp_path, monkeypatch):
    """Found while writing these tests: a gap in the migrations was a KeyError (fixed in the store)."""
    path = tmp_path / "runs.db"
    _write_v1_database(path)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 3)
    monkeypatch.setitem(store_module._MIGRATIONS, 1, "ALTER TABLE runs ADD COLUMN note TEXT;")
    with pytest.raises(StoreError, match=r"version 1, which this scalinglab cannot migrate to 3 \(no step"):
        RunStore(path)
    assert _pragma(path, "user_version") == 1 and "note" not in _columns(path)  # rolled back


# ------------------------------------------------------------ Ray cluster killed (slow)

@pytest.mark.slow
def test_sigkill_of_a_ray_driver_and_its_cluster_then_resume(tmp_path, cli_env):
    """`--executor ray` with its own Ray: SIGKILL the driver (its cluster dies with it), re-run, complete."""
    pytest.importorskip("ray")
    db = tmp_path / "runs.db"
    cmd = scalinglab_cmd("sweep", "mnist", *MNIST_FLAGS, "--db", str(db), "--workers", "2",
                         "--executor", "ray")
    done_before = kill_after_completions(cmd, db, cli_env)
    assert 0 < done_before < 12
    out = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"{done_before} already finished" in out.stdout
    with RunStore(db) as store:
        runs = store.runs()
        assert store.integrity_check() == "ok"
    assert len(runs) == 12 and (runs.status == "complete").all()
