"""The local process pool starts no more processes than there are runs to train (issue 16, case 9)."""

import multiprocessing as mp
import time

from faults.families import NAME as FAULTY
from scalinglab.sweep.executors import LocalPool


def drain(pool, n: int, timeout_s: float = 120) -> list:
    outcomes, deadline = [], time.monotonic() + timeout_s
    while len(outcomes) < n and time.monotonic() < deadline:
        outcomes += pool.poll(timeout=1.0)
    return outcomes


def test_more_workers_than_runs_starts_one_process_per_run():
    """Before: LocalPool(6) started 6 torch processes (~1 GB each) for a sweep of two runs."""
    pool = LocalPool(6)
    try:
        assert mp.active_children() == []  # nothing starts before there is work
        for width in (1, 2):
            pool.submit((f"k{width}", FAULTY, {"width": width}))
        first = drain(pool, 2)
        assert len(mp.active_children()) == 2
        pool.submit(("k3", FAULTY, {"width": 3}))  # an idle process takes it: still two
        later = drain(pool, 1)
        assert len(mp.active_children()) == 2
    finally:
        pool.close()
    assert sorted(o.key for o in first + later) == ["k1", "k2", "k3"]
    assert all(o.error is None for o in first + later)
