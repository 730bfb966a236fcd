"""Each guarantee in scalinglab.store's docstring, tested."""

import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

from scalinglab.errors import StoreError
from scalinglab.store import LEASE_SECONDS, RunStore

RESULT = dict(params=100, flops=1e6, examples=10, val_loss=0.5, val_acc=0.9, curve=[[5, 1.0]],
              metrics={"steps": 1})
CONFIGS = [{"width": w, "fraction": 0.5} for w in (4, 8, 16)]


def finish(store, key, **over):
    return store.finish(key, {**RESULT, **over}, wall_s=1.0, code_version="test", versions={})


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "runs.db") as s:
        yield s


def test_finished_runs_are_frozen(store):
    key = store.add_study("s", "mnist_cnn", CONFIGS)[0]
    assert store.claim(key, "me")
    assert finish(store, key) == "complete"
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        store.conn.execute("UPDATE runs SET val_loss = 0 WHERE key = ?", (key,))
    with pytest.raises(sqlite3.IntegrityError, match="cannot be deleted"):
        store.conn.execute("DELETE FROM runs WHERE key = ?", (key,))
    assert not store.claim(key, "someone else")
    store.fail(key, "late failure report")  # ignored: the run finished
    assert store.runs().set_index("key").loc[key, "status"] == "complete"


def test_adding_a_study_again_adds_nothing(store):
    keys = store.add_study("s", "mnist_cnn", CONFIGS)
    assert store.add_study("s", "mnist_cnn", CONFIGS) == keys
    assert len(store.runs()) == 3
    store.add_study("t", "mnist_cnn", CONFIGS[:1])  # shared run, second study
    assert len(store.runs()) == 3 and len(store.runs(study="t")) == 1


def test_unfinished_runs_are_claimable_and_ordered_by_cost(store):
    keys = store.add_study("s", "mnist_cnn", CONFIGS, costs=[1.0, 3.0, 2.0])
    assert [k for k, _, _ in store.unfinished("s")] == [keys[1], keys[2], keys[0]]
    store.claim(keys[0], "me")
    store.fail(keys[0], "boom")
    assert store.runs().set_index("key").loc[keys[0], "error"] == "boom"
    assert store.claim(keys[0], "me again")  # failed runs are retried


def test_diverged_result_is_recorded_not_raised(store):
    key = store.add_study("s", "mnist_cnn", CONFIGS)[0]
    store.claim(key, "me")
    assert finish(store, key, val_loss=float("nan")) == "diverged"
    row = store.runs().set_index("key").loc[key]
    assert row.status == "diverged" and pd.isna(row.val_loss)


def test_live_lease_blocks_a_second_driver(store):
    key = store.add_study("s", "mnist_cnn", CONFIGS)[0]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        import socket

        live_owner = f"{socket.gethostname()}:{sleeper.pid}:x"
        assert store.claim(key, live_owner)
        assert not store.claim(key, "other")  # owner alive, lease fresh
    finally:
        sleeper.kill()
        sleeper.wait()
    assert store.claim(key, "other")  # owner process gone: taken over at once


def test_expired_lease_is_taken_over(store):
    key = store.add_study("s", "mnist_cnn", CONFIGS)[0]
    store.claim(key, "farhost:1:x")  # another host: liveness unknown
    assert not store.claim(key, "me")
    store.conn.execute("UPDATE runs SET heartbeat = ? WHERE key = ?", (time.time() - LEASE_SECONDS - 1, key))
    assert store.claim(key, "me")


def test_release_hands_runs_back(store):
    key = store.add_study("s", "mnist_cnn", CONFIGS)[0]
    store.claim(key, "me")
    store.release("me")
    assert store.status_counts()["pending"] == 3


def test_wal_and_integrity(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.integrity_check() == "ok"


def test_garbage_file_is_refused_and_untouched(tmp_path):
    path = tmp_path / "runs.db"
    path.write_bytes(b"these are my notes, not a database" * 10)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not an SQLite database"):
        RunStore(path)
    assert path.read_bytes() == before


def test_foreign_sqlite_database_is_refused_and_untouched(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="another program"):
        RunStore(path)
    assert path.read_bytes() == before


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "runs.db"
    RunStore(path).close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer"):
        RunStore(path)


def test_truncated_database_is_refused(tmp_path):
    path = tmp_path / "runs.db"
    with RunStore(path) as s:
        s.add_study("s", "mnist_cnn", CONFIGS)
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\x00garbage" * 200)
    with pytest.raises(StoreError):
        RunStore(path).runs()


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        RunStore(tmp_path / "nope" / "runs.db")


def test_a_second_store_in_one_process_keeps_commits_visible_to_other_processes(tmp_path):
    """Opening the file again in this process (the sweep's heartbeat thread does) must not drop the
    first connection's locks. If it did, the next process to close a connection would think itself
    the last one and delete the WAL, and this process's later commits would go to a deleted file:
    invisible to everyone, and lost in a crash."""
    db = tmp_path / "runs.db"
    count = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM runs').fetchone()[0])"

    def seen_by_another_process() -> str:
        return subprocess.run([sys.executable, "-c", count, str(db)], capture_output=True, text=True,
                              check=True).stdout.strip()

    with RunStore(db) as store:
        store.add_study("s", "f", [{"width": 1}])
        with RunStore(db):
            assert seen_by_another_process() == "1"
            store.add_study("s", "f", [{"width": 2}])
            assert seen_by_another_process() == "2"
