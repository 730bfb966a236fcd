"""A tiny fake family whose runs can crash, be killed, run out of memory or hang.

Runs take ``sleep`` seconds and report a loss computed from the config, so a
fault test needs no real training. A config selects its misbehaviour:

    {"width": 4, "fault": "crash", "marker": "/tmp/x"}   # os._exit(1), once
    {"width": 4, "fault": "sigkill", "marker": "/tmp/x"} # SIGKILL itself (what the OOM killer does), once
    {"width": 4, "fault": "memory"}                      # MemoryError under an address-space limit
    {"width": 4, "fault": "hang", "marker": "/tmp/x"}    # write the pid to marker, then sleep; once
    {"width": 4, "fault": "stolen", "db": "/tmp/runs.db"} # while it trains, a rival driver takes the run
                                                         # over (as after an expired lease) and finishes it
    {"width": 4, "fault": "fill", "marker": "/tmp/x", "filler": "/mnt/f"}  # fill filler's disk up, once

"Once" means: only while ``marker`` does not exist (crash/sigkill create it
before dying; hang writes its pid there), so a re-run of the same config trains.
Use it as ``get_family("faults.families:FAMILY")`` (``tests/`` is on sys.path).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import time
from pathlib import Path

from scalinglab.sweep.family import RunResult


def _touch(marker: str, text: str = "") -> bool:
    """Create ``marker``; False when it already existed (the fault already happened)."""
    try:
        with open(marker, "x") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        return True
    except FileExistsError:
        return False


def _exhaust_memory() -> None:
    """Allocate past a soft address-space limit: a MemoryError, as on a too-small machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + (256 << 20), hard))
    try:
        blocks = [bytearray(64 << 20) for _ in range(64)]  # 4 GiB, far past the limit
        del blocks
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class FaultyFamily:
    name = "faults"

    def cost(self, config: dict) -> float:
        return float(config["width"])

    def data_key(self, config: dict):
        return "fake"

    def load_data(self, config: dict):
        return {"loaded_by": os.getpid()}

    def train(self, config: dict, data) -> RunResult:
        fault, marker = config.get("fault"), config.get("marker")
        if fault == "crash" and _touch(marker):
            os._exit(1)
        if fault == "sigkill" and _touch(marker):
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "memory":
            _exhaust_memory()
        if fault == "hang" and _touch(marker, str(os.getpid())):
            time.sleep(120)  # until the test kills this process
        if fault == "stolen":
            _take_over(config)
        if fault == "fill" and _touch(marker):
            fill_disk(config["filler"])
        time.sleep(config.get("sleep", 0.0))
        width = config["width"]
        return RunResult(params=10 * width, flops=60.0 * width * 100, examples=100,
                         val_loss=1.0 / width + 0.01 * config.get("seed", 0), val_acc=0.5,
                         metrics={"worker_pid": os.getpid(), "data_loaded_by": data["loaded_by"]})


def fill_disk(path: str) -> None:
    """Write zeros to ``path`` until its file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:  # ENOSPC
        pass
    finally:
        os.close(fd)


THIEF = "rival-host:1:thief"
THIEF_LOSS = 0.123


def _take_over(config: dict) -> None:
    """What a second driver does to a run whose driver paused past its lease: claim it, train, finish."""
    from scalinglab.store import LEASE_SECONDS, RunStore

    with RunStore(config["db"]) as store:
        key = store.conn.execute("SELECT key FROM runs WHERE config = ?",
                                 (json.dumps(config, sort_keys=True),)).fetchone()[0]
        store.conn.execute("UPDATE runs SET heartbeat = heartbeat - ? WHERE key = ?", (LEASE_SECONDS + 1, key))
        assert store.claim(key, THIEF)
        store.finish(key, dict(params=1, flops=1.0, examples=1, val_loss=THIEF_LOSS), wall_s=0.1,
                     code_version="thief", versions={}, owner=THIEF)


FAMILY = FaultyFamily()
NAME = "faults.families:FAMILY"


def marker_path(tmp: Path, name: str) -> str:
    return str(tmp / f"{name}.marker")
