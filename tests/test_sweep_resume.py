"""A sweep killed with SIGKILL resumes with nothing lost and nothing duplicated."""

import random
import signal
import subprocess
import time

import numpy as np
import pytest

from cli_helpers import kill_after_completions, scalinglab_cmd
from scalinglab.store import RunStore
from scalinglab.families.mnist.study import sweep_mnist
from scalinglab.families.mnist.grid import MnistGrid

GRID = dict(widths="4,6", fractions="1,1/2,1/4", seeds="0,1", train_limit=1500, precision="fp32")
FLAGS = ["--widths", "4,6", "--fractions", "1,1/2,1/4", "--seeds", "0,1", "--train-limit", "1500",
         "--precision", "fp32", "--quiet"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same sweep, uninterrupted, in-process."""
    db = tmp_path_factory.mktemp("ref") / "runs.db"
    sweep_mnist(MnistGrid.from_dict(GRID), db=db, workers=0, progress=False)
    with RunStore(db) as store:
        return store.runs().set_index("key")


def check_against_reference(db, reference):
    with RunStore(db) as store:
        assert store.integrity_check() == "ok"
        runs = store.runs().set_index("key")
    assert sorted(runs.index) == sorted(reference.index)  # no loss, no duplicate
    assert (runs.status == "complete").all()
    np.testing.assert_allclose(runs.loc[reference.index, "val_loss"].astype(float),
                               reference.val_loss.astype(float), rtol=1e-4)
    return runs


def test_sigkill_mid_sweep_then_resume(tmp_path, reference, cli_env):
    db = tmp_path / "runs.db"
    cmd = scalinglab_cmd("sweep", "mnist", *FLAGS, "--db", str(db), "--workers", "2")
    done_before = kill_after_completions(cmd, db, cli_env)
    assert 0 < done_before < len(reference)
    out = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"{done_before} already finished" in out.stdout
    runs = check_against_reference(db, reference)
    assert (runs.attempts >= 1).all()


def test_many_random_kills(tmp_path, reference, cli_env):
    """SIGKILL the driver at 12+ random moments; the database ends equal to an uninterrupted sweep."""
    db = tmp_path / "runs.db"
    cmd = scalinglab_cmd("sweep", "mnist", *FLAGS, "--db", str(db), "--workers", "0")
    rng = random.Random(1234)
    kills, start = 0, time.monotonic()
    while time.monotonic() - start < 120:
        proc = subprocess.Popen(cmd, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(1.0, 3.0))  # ~1 s is start-up: most kills land in a sweep
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            if kills >= 12:
                break  # the uninterrupted resume below finishes the sweep
            continue
        assert proc.returncode == 0
        # finished before enough kills: start over with a fresh database to keep killing
        check_against_reference(db, reference)
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"runs.db{suffix}").unlink(missing_ok=True)
    print(f"survived {kills} SIGKILLs")
    assert kills >= 12
    out = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    check_against_reference(db, reference)
