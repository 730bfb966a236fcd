"""Several MNIST runs trained as one computation give each run what it gets alone."""

import math

import pytest
import torch

from scalinglab.families.mnist.train import FAMILY, MnistRunConfig, train_runs
from scalinglab.store import RunStore
from scalinglab.sweep.engine import run_sweep


def _runs(**common):
    return [MnistRunConfig(**common, seed=seed, dropout=dropout) for seed, dropout in
            [(0, 0.0), (1, 0.0), (2, 0.5), (0, 0.3)]]


def test_batched_runs_equal_runs_alone_fp32(mnist_tensors):
    """Per-step train losses and test losses agree to float rounding; dropout masks and init are each run's own.

    MNIST's constant background makes the pool's windows tie in every image, so
    the tie rule is exercised on every step.
    """
    cfgs = _runs(width=4, fraction=1.0, train_limit=1024, batch_size=64, precision="fp32")
    together = train_runs(cfgs, mnist_tensors)
    for cfg, joint in zip(cfgs, together):
        alone = train_runs([cfg], mnist_tensors)[0]
        assert joint.val_loss == pytest.approx(alone.val_loss, rel=1e-5)
        assert joint.val_acc == alone.val_acc
        for (seen_a, loss_a), (seen_b, loss_b) in zip(alone.curve, joint.curve):
            assert seen_a == seen_b and loss_b == pytest.approx(loss_a, rel=1e-5)
    # the runs really differ from one another (not one run copied K times)
    assert len({round(r.val_loss, 6) for r in together}) == len(cfgs)


def test_a_diverging_run_stops_where_it_stops_alone(mnist_tensors):
    """One poisoned image ends each run at the step its own order reaches it; batch-mates are unaffected."""
    from dataclasses import replace

    from scalinglab.families.mnist.train import MnistTensors, data_order

    cfgs = _runs(width=4, fraction=1.0, train_limit=512, batch_size=64, precision="fp32")[:3]
    poisoned = MnistTensors(mnist_tensors.x_train.clone(), mnist_tensors.y_train,
                            mnist_tensors.x_test, mnist_tensors.y_test)
    victim = int(data_order(cfgs[0])[200])  # step 3 of run 0; elsewhere in the others' orders
    poisoned.x_train[victim] = float("inf")
    together = train_runs(cfgs, poisoned)
    steps = [r.metrics["diverged_at_step"] for r in together]
    assert steps[0] == 3 and len(set(steps)) == 3  # each run stopped at its own step
    with pytest.raises(ValueError, match="must share lr"):
        train_runs([cfgs[0], replace(cfgs[1], lr=0.5)], poisoned)
    for cfg, joint in zip(cfgs, together):
        alone = train_runs([cfg], poisoned)[0]
        assert joint.metrics["diverged_at_step"] == alone.metrics["diverged_at_step"]
        assert math.isnan(joint.val_loss) and joint.val_acc is None
        assert [p for p, _ in joint.curve] == [p for p, _ in alone.curve]
        assert [v for _, v in joint.curve] == pytest.approx([v for _, v in alone.curve], rel=1e-5)


def test_engine_batches_narrow_runs_and_records_each(tmp_path, mnist_tensors, monkeypatch):
    """The sweep sends runs with one batch key as one task and records every run, as if trained alone."""
    seen = []
    real = type(FAMILY).train_batch

    def spy(self, configs, data):
        seen.append(len(configs))
        return real(self, configs, data)

    monkeypatch.setattr(type(FAMILY), "train_batch", spy)
    configs = [{"width": w, "fraction": 1.0, "train_limit": 256, "seed": s, "precision": "fp32"}
               for w in (4, 16) for s in range(3)]
    with RunStore(tmp_path / "runs.db") as store:
        summary = run_sweep(store, "b", "mnist_cnn", configs, workers=0, progress=False)
        runs = store.runs().sort_values(["width", "seed"])
    assert summary.ran == 6 and summary.failed == 0
    assert seen == [3]  # the three width-4 runs together; width 16 is not batched
    alone = train_runs([MnistRunConfig.from_dict(configs[1])], mnist_tensors)[0]
    assert runs.iloc[1].val_loss == pytest.approx(alone.val_loss, rel=1e-5)
