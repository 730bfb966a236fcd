"""Helpers for tests that run the scalinglab CLI in a subprocess."""

import signal
import sqlite3
import subprocess
import sys
import time


def scalinglab_cmd(*args: str) -> list[str]:
    """Command line running the scalinglab CLI with this interpreter."""
    return [sys.executable, "-m", "scalinglab", *args]


def complete_count(db) -> int:
    """Finished runs in ``db`` right now (0 while the database is still being created)."""
    try:
        con = sqlite3.connect(db, timeout=10)
        try:
            return con.execute("SELECT count(*) FROM runs WHERE status = 'complete'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def kill_after_completions(cmd: list[str], db, env: dict, *, runs: int = 2, timeout: float = 240) -> int:
    """Start a CLI sweep, SIGKILL it once ``runs`` runs have finished; returns how many had."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while complete_count(db) < runs and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)  # runs of the test grids take ~0.1 s each
    assert proc.poll() is None, "the sweep finished before it could be killed; make the grid larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return complete_count(db)
