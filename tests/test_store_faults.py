"""The run store under hostile files, paths and disks (issue 16, cases 1, 4, 5 and 9).

Each test reproduces a case that failed before the fix: a late finisher after
a lease takeover, '#', '?' and '%' in --db, a version check after a write, a
foreign empty SQLite file, reading commands writing a schema, a damaged page,
a full disk, a read-only mount, and filters that silently matched nothing.
"""

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faults.families import NAME as FAULTY, THIEF, THIEF_LOSS, fill_disk
from faults.mounts import remount_readonly, tmpfs
from scalinglab.cli import main as cli_main
from scalinglab.errors import StoreError
from scalinglab.store import LEASE_SECONDS, TAKEN_OVER, RunStore
from scalinglab.sweep.engine import run_sweep

RESULT = dict(params=100, flops=1e6, examples=10, val_loss=0.5, val_acc=0.9, curve=[[5, 1.0]])
CONFIGS = [{"width": w} for w in (4, 8, 16)]


def finish(store, key, owner=None, **over):
    by = {} if owner is None else {"owner": owner}
    return store.finish(key, {**RESULT, **over}, wall_s=1.0, code_version="test", versions={}, **by)


def one_line(message: str) -> bool:
    return "\n" not in message.strip() and "Traceback" not in message


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def foreign_db(path: Path) -> None:
    con = sqlite3.connect(path)  # rollback journal: its header says so until someone switches it
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()


def healthy_db(path: Path, n: int = 3) -> list[str]:
    with RunStore(path) as store:
        keys = store.add_study("s", "mnist_cnn", [{"width": w} for w in range(1, n + 1)])
        store.claim(keys[0], "me")
        finish(store, keys[0])
    return keys


# ------------------------------------------------------------ case 1: lease takeover

def test_late_finisher_after_a_takeover_is_told_and_the_first_result_stands(tmp_path):
    with RunStore(tmp_path / "runs.db") as store:
        key = store.add_study("s", "mnist_cnn", CONFIGS)[0]
        assert store.claim(key, "laptop:1:a")  # driver A, then suspended past its lease
        store.conn.execute("UPDATE runs SET heartbeat = ? WHERE key = ?", (time.time() - LEASE_SECONDS - 1, key))
        assert store.claim(key, "desktop:2:b")  # driver B takes the run over
        assert finish(store, key, owner="desktop:2:b", val_loss=0.25) == "complete"
        # A wakes up and finishes too: before the fix, sqlite3.IntegrityError "finished runs are immutable"
        assert finish(store, key, val_loss=0.75) == TAKEN_OVER
        row = store.runs().set_index("key").loc[key]
    assert (row.status, row.val_loss, row.attempts, row.owner) == ("complete", 0.25, 2, "desktop:2:b")


def test_a_late_failure_does_not_fail_the_run_another_driver_took_over(tmp_path):
    with RunStore(tmp_path / "runs.db") as store:
        key = store.add_study("s", "mnist_cnn", CONFIGS)[0]
        store.claim(key, "laptop:1:a")
        store.conn.execute("UPDATE runs SET heartbeat = 0 WHERE key = ?", (key,))
        store.claim(key, "desktop:2:b")
        assert not store.fail(key, "A's worker died", owner="laptop:1:a")
        row = store.runs().set_index("key").loc[key]
    assert (row.status, row.owner) == ("running", "desktop:2:b")  # B's claim survives


def test_a_sweep_whose_run_was_taken_over_says_so_and_carries_on(tmp_path, capsys):
    db = tmp_path / "runs.db"
    configs = [{"width": 1, "fault": "stolen", "db": str(db)}, *({"width": w} for w in (2, 3))]
    with RunStore(db) as store:
        summary = run_sweep(store, "s", FAULTY, configs, workers=0, progress=False)
        runs = store.runs().set_index("width")
    assert (summary.ran, summary.taken_over, summary.failed) == (2, 1, 0)
    assert (runs.status == "complete").all()
    assert runs.val_loss[1] == THIEF_LOSS and runs.owner[1] == THIEF  # the rival's result is kept
    assert "took it over" in capsys.readouterr().err
    assert "taken over by another driver" in summary.describe()


def test_a_sweep_says_how_many_runs_another_driver_held(tmp_path):
    db = tmp_path / "runs.db"
    configs = [{"width": w} for w in (1, 2, 3)]
    with RunStore(db) as store:
        keys = store.add_study("s", "faults", configs)
        store.claim(keys[0], "far-host:1:x")  # a live lease of a driver on another machine
        summary = run_sweep(store, "s", FAULTY, configs, workers=0, progress=False)
        assert store.runs().set_index("width").status[1] == "running"
    assert (summary.ran, summary.held) == (2, 1)
    assert "1 runs skipped: another driver holds them" in summary.describe()


# ------------------------------------------------------------ case 4: opening

@pytest.mark.parametrize("name", ["a#b.db", "a?mode=rwc.db", "a%41b.db", "sp ace.db"])
def test_uri_characters_in_the_path_open_that_very_file(tmp_path, name):
    path = tmp_path / name
    foreign_db(path)
    before = snapshot(path)
    entries = sorted(os.listdir(tmp_path))
    with pytest.raises(StoreError, match="another program"):
        RunStore(path)
    assert snapshot(path) == before  # not switched to WAL behind a "was not changed" message
    assert sorted(os.listdir(tmp_path)) == entries  # and no stray file beside it

    ours = tmp_path / ("ours-" + name)
    healthy_db(ours)
    with RunStore(ours, readonly=True) as store:
        assert len(store.runs()) == 3
    assert not (tmp_path / "ours-a").exists()


def test_a_wrong_version_is_refused_before_any_write(tmp_path):
    path = tmp_path / "runs.db"
    healthy_db(path)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = DELETE")  # a rollback-journal file (as a copy or an old backup)
    con.execute("PRAGMA user_version = 99")
    con.close()
    before = snapshot(path)
    with pytest.raises(StoreError, match="schema version 99, newer"):
        RunStore(path)
    assert snapshot(path) == before  # the header was rewritten to WAL before the fix


def test_an_empty_sqlite_file_of_another_program_is_refused_untouched(tmp_path):
    path = tmp_path / "theirs.db"
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 42")  # no tables, application id 0
    con.close()
    before = snapshot(path)
    for readonly in (False, True):
        with pytest.raises(StoreError, match="another program .*user version 42"):
            RunStore(path, readonly=readonly)
    assert snapshot(path) == before


@pytest.mark.parametrize("kind", ["zero-byte", "foreign", "missing"])
def test_reading_never_writes_a_schema(tmp_path, kind):
    path = tmp_path / "runs.db"
    if kind == "zero-byte":
        path.touch()
    elif kind == "foreign":
        foreign_db(path)
    before = snapshot(path) if path.exists() else None
    with pytest.raises(StoreError) as err:
        RunStore(path, readonly=True)
    assert one_line(str(err.value)) and "not changed" in str(err.value)
    assert (snapshot(path) if path.exists() else None) == before
    assert sorted(os.listdir(tmp_path)) == ([] if kind == "missing" else ["runs.db"])


def test_a_readonly_open_changes_nothing(tmp_path):
    path = tmp_path / "runs.db"
    healthy_db(path)
    before = snapshot(path)
    with RunStore(path, readonly=True) as store:
        assert store.runs().status.tolist().count("complete") == 1
        with pytest.raises(StoreError, match="cannot be written"):
            store.add_study("t", "mnist_cnn", CONFIGS)
    assert snapshot(path) == before


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 300 kB file system at tmp_path/mnt (root only); unmounted afterwards."""
    with tmpfs(tmp_path / "mnt") as mnt:
        yield mnt


def test_a_healthy_database_on_a_readonly_mount_is_readable(small_tmpfs):
    path = small_tmpfs / "runs.db"
    healthy_db(path)
    assert not Path(f"{path}-wal").exists()  # closed cleanly: the WAL was checkpointed away
    remount_readonly(small_tmpfs)
    with RunStore(path, readonly=True) as store:
        assert len(store.runs()) == 3
    with pytest.raises(StoreError, match="cannot be written") as err:
        RunStore(path)  # a sweep needs to write: one line that says so
    assert one_line(str(err.value))


# ------------------------------------------------------------ case 5: damage and full disks

def corrupt_a_page(path: Path) -> None:
    """Overwrite the second page (the runs table's root) with garbage, as a bad disk or copy would."""
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as f:
        f.seek(page)
        f.write(b"\xa5" * page)


def test_a_corrupted_page_is_one_line_in_every_command(tmp_path, capsys):
    path = tmp_path / "runs.db"
    healthy_db(path, n=20)
    corrupt_a_page(path)
    before = snapshot(path)
    for readonly in (False, True):
        with pytest.raises(StoreError, match="damaged .*SQLite") as err:
            RunStore(path, readonly=readonly)
        assert one_line(str(err.value)) and ".recover" in str(err.value)
    for argv in (["runs", "--db", str(path)],
                 ["report", "--db", str(path), "--out", str(tmp_path / "r")],
                 ["fit", str(path), "--bootstrap", "0"],
                 ["sweep", "mnist", "--db", str(path), "--widths", "4", "--fractions", "1", "--workers", "0"]):
        assert cli_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("scalinglab: error:") and one_line(err), (argv, err)
        assert "damaged" in err or "malformed" in err, (argv, err)  # fit names SQLite's own words
    assert snapshot(path) == before


def test_a_full_disk_is_one_line_and_loses_nothing(small_tmpfs):
    path = small_tmpfs / "runs.db"
    keys = healthy_db(path)
    big = [{"width": w, "note": "x" * 2000} for w in range(200)]
    with RunStore(path) as store:  # a sweep is running when the disk fills up
        filler = small_tmpfs / "filler"
        fill_disk(str(filler))
        with pytest.raises(StoreError, match="disk is full") as err:
            store.add_study("big", "mnist_cnn", big)
        assert one_line(str(err.value))
    filler.unlink()
    with RunStore(path) as store:
        assert store.integrity_check() == "ok"
        runs = store.runs().set_index("key")
        assert len(runs) == 3  # the failed transaction left nothing half-written
        assert runs.status[keys[0]] == "complete" and runs.val_loss[keys[0]] == 0.5
        store.add_study("big", "mnist_cnn", big[:20])  # with space again, the same call completes
        assert len(store.runs(study="big")) == 20


SWEEP = """
import sys
sys.path.insert(0, sys.argv[2])
from faults.families import NAME
from scalinglab.errors import ScalingLabError
from scalinglab.store import RunStore
from scalinglab.sweep.engine import run_sweep
configs = [{"width": 1}, {"width": 2, "fault": "fill", "marker": sys.argv[3], "filler": sys.argv[4]}, {"width": 3}]
try:
    with RunStore(sys.argv[1]) as store:
        print(run_sweep(store, "s", NAME, configs, workers=0, progress=False).describe())
except ScalingLabError as exc:  # what the CLI does with it
    sys.exit(f"scalinglab: error: {exc}")
"""


def test_a_sweep_that_fills_the_disk_stops_with_one_line_and_resumes(small_tmpfs, tmp_path):
    db, filler = small_tmpfs / "runs.db", small_tmpfs / "filler"
    args = [str(db), str(Path(__file__).resolve().parent), str(tmp_path / "filled.marker"), str(filler)]
    first = subprocess.run([sys.executable, "-c", SWEEP, *args], capture_output=True,
                           text=True, timeout=120)
    assert first.returncode == 1 and "disk is full" in first.stderr  # before: a sqlite3 traceback
    assert one_line(first.stderr), first.stderr
    with RunStore(db, readonly=True) as store:
        before = store.runs().set_index("width")
    filler.unlink()
    again = subprocess.run([sys.executable, "-c", SWEEP, *args], capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    with RunStore(db) as store:
        runs = store.runs().set_index("width")
        assert store.integrity_check() == "ok"
    assert before.status[3] == "complete" and (runs.status == "complete").all()  # costliest first: 3 ran
    assert "2 runs trained, 1 already finished" in again.stdout and runs.finished[3] == before.finished[3]


# ------------------------------------------------------------ case 9: filters that match nothing

def test_an_unknown_status_or_study_lists_the_valid_values(tmp_path, capsys):
    path = tmp_path / "runs.db"
    healthy_db(path)
    with RunStore(path, readonly=True) as store:
        with pytest.raises(StoreError, match="'bogus' is invalid: must be one of pending, running, complete"):
            store.runs(status="bogus")
        with pytest.raises(StoreError, match="no study named 'bogus' .*studies: s"):
            store.runs(study="bogus")
        assert len(store.runs(status=["complete", "pending"], study="s")) == 3
    for flag in ("--status", "--study"):
        assert cli_main(["runs", "--db", str(path), flag, "bogus"]) == 2
        err = capsys.readouterr().err
        assert one_line(err) and "bogus" in err
def test_reading_commands_leave_a_zero_byte_file_empty(tmp_path, capsys):
    path = tmp_path / "runs.db"
    path.touch()
    for argv in (["runs", "--db", str(path)], ["report", "--db", str(path), "--out", str(tmp_path / "r")]):
        assert cli_main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("scalinglab: error:") and one_line(err)
    assert path.stat().st_size == 0


def test_reading_commands_read_a_database_on_a_readonly_mount(small_tmpfs, capsys):
    path = small_tmpfs / "runs.db"
    healthy_db(path)
    remount_readonly(small_tmpfs)
    assert cli_main(["runs", "--db", str(path)]) == 0
    assert capsys.readouterr().out.count("\n") == 4  # header + 3 runs
