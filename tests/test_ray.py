"""The Ray executor: same results as the local one, data put in the object store once, dead actors survived.

One local Ray instance (``ray.init(num_cpus=2)``) serves the whole module;
starting it takes most of the time (about 10 s).
"""

import os
import sys
from pathlib import Path

import pytest

from faults.families import NAME as FAULTY, marker_path
from scalinglab.errors import ConfigError
from scalinglab.store import RunStore
from scalinglab.sweep.engine import run_sweep
from scalinglab.families.mnist.grid import MnistGrid
from test_sweep_resume import check_against_reference

try:
    import ray
except ImportError:  # the optional extra: pip install 'scalinglab[ray]'
    ray = None

needs_ray = pytest.mark.skipif(ray is None, reason="Ray is not installed (pip install 'scalinglab[ray]')")
TESTS = str(Path(__file__).resolve().parent)
GRID = dict(widths="4,6", fractions="1,1/2", seeds="0", train_limit=1500, precision="fp32")


@pytest.fixture(scope="module")
def local_ray():
    # Ray workers do not inherit the driver's sys.path: tell them where the test families live.
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": TESTS}})
    yield ray
    ray.shutdown()


def test_missing_ray_is_a_config_error(monkeypatch):
    from scalinglab.sweep.engine import make_executor

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ConfigError, match=r"pip install 'scalinglab\[ray\]'"):
        make_executor("ray", 2)


def test_unreachable_address_is_a_config_error_at_once():
    from scalinglab.sweep.ray_executor import _check_reachable

    with pytest.raises(ConfigError, match="--address 127.0.0.1:1: cannot connect"):
        _check_reachable("127.0.0.1:1")  # ray.init itself would retry for minutes


@needs_ray
def test_ray_sweep_matches_local_sweep(tmp_path, local_ray, monkeypatch):
    configs = MnistGrid.from_dict(GRID).configs()
    with RunStore(tmp_path / "local.db") as store:
        run_sweep(store, "s", "mnist_cnn", configs, workers=0, progress=False)
        reference = store.runs().set_index("key")

    puts = []
    real_put = ray.put
    monkeypatch.setattr(ray, "put", lambda value, **kw: puts.append(1) or real_put(value, **kw))
    db = tmp_path / "ray.db"
    with RunStore(db) as store:
        summary = run_sweep(store, "s", "mnist_cnn", configs, workers=2, executor="ray", progress=False)
    assert (summary.ran, summary.failed) == (len(configs), 0)
    assert len(puts) == 1  # the data set went to the object store once, not once per run
    runs = check_against_reference(db, reference)  # same keys, all complete, val_loss within 1e-4
    assert (runs.attempts == 1).all()
    assert ray.is_initialized()  # the executor did not start this Ray, so it did not stop it


@needs_ray
def test_dead_ray_workers_fail_their_runs_and_are_replaced(tmp_path, local_ray):
    configs = [{"width": 1, "fault": "crash", "marker": marker_path(tmp_path, "crash")},
               {"width": 2, "fault": "sigkill", "marker": marker_path(tmp_path, "kill")},
               *({"width": w, "sleep": 0.2} for w in (3, 4, 5, 6))]
    with RunStore(tmp_path / "runs.db") as store:
        summary = run_sweep(store, "s", FAULTY, configs, workers=2, executor="ray", progress=False)
        assert (summary.ran, summary.failed) == (4, 2)
        runs = store.runs().set_index("width")
        assert set(runs.status[runs.index <= 2]) == {"failed"}
        assert set(runs.status[runs.index > 2]) == {"complete"}  # replaced actors ran the rest
        assert runs.error[2].startswith("Ray worker died") and "out-of-memory" in runs.error[2]
        # the data was loaded on the driver and reached the actors through the object store
        assert {m["data_loaded_by"] for m in runs.metrics[runs.index > 2]} == {os.getpid()}
        done_before = runs.loc[runs.index > 2, ["finished", "val_loss"]]

        again = run_sweep(store, "s", FAULTY, configs, workers=2, executor="ray", progress=False)
        assert (again.ran, again.skipped, again.failed) == (2, 4, 0)
        runs = store.runs().set_index("width")
        assert (runs.status == "complete").all()
        assert runs.attempts.to_dict() == {1: 2, 2: 2, 3: 1, 4: 1, 5: 1, 6: 1}
        assert runs.loc[runs.index > 2, ["finished", "val_loss"]].equals(done_before)  # untouched
