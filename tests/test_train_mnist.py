import math

import numpy as np
import pytest
import torch
from scalinglab.errors import ConfigError
from scalinglab.families.mnist.model import train_flops_per_example
from scalinglab.families.mnist.train import FAMILY, MnistRunConfig, MnistTensors, data_order, train_run
from scalinglab.families.mnist.reference import textbook_run

TINY = dict(width=4, fraction=0.5, train_limit=2000, batch_size=64, precision="fp32")


def test_same_seed_same_result(mnist_tensors):
    a = train_run(MnistRunConfig(**TINY, seed=3), mnist_tensors)
    b = train_run(MnistRunConfig(**TINY, seed=3), mnist_tensors)
    assert a.val_loss == b.val_loss and a.curve == b.curve
    c = train_run(MnistRunConfig(**TINY, seed=4), mnist_tensors)
    assert c.val_loss != a.val_loss


def test_run_accounting(mnist_tensors):
    r = train_run(MnistRunConfig(**TINY), mnist_tensors)
    assert r.examples == 1000
    assert r.flops == 1000 * train_flops_per_example(4)
    assert 0 < len(r.curve) <= 32 and r.curve[-1][0] == 1000
    assert 0 < r.val_loss < math.log(10) * 1.5 and 0 <= r.val_acc <= 1


def test_training_learns(mnist_tensors):
    r = train_run(MnistRunConfig(width=8, fraction=1.0, train_limit=4000, precision="fp32"), mnist_tensors)
    assert r.val_acc > 0.8


def test_data_order_uses_only_the_fraction():
    cfg = MnistRunConfig(**TINY)
    order = data_order(cfg)
    assert len(order) == 1000 and len(set(order.tolist())) == 1000


def test_divergence_is_recorded_not_raised(mnist_tensors):
    r = train_run(MnistRunConfig(**{**TINY, "lr": 1e30}), mnist_tensors)
    assert r.diverged and math.isnan(r.val_loss) and r.val_acc is None
    assert r.metrics["diverged_at_step"] is not None


@pytest.mark.parametrize("bad, field", [
    ({"width": 0}, "width"), ({"width": 2.5}, "width"), ({"fraction": 0}, "fraction"),
    ({"fraction": 1.5}, "fraction"), ({"dropout": 1.0}, "dropout"), ({"lr": -1}, "lr"),
    ({"precision": "fp16"}, "precision"), ({"batch_size": 0}, "batch_size"),
])
def test_bad_run_settings_name_the_field(bad, field):
    with pytest.raises(ConfigError, match=f"^{field} = "):
        MnistRunConfig(**{**TINY, **bad})


def test_unknown_setting_is_named():
    with pytest.raises(ConfigError, match="unknown MNIST run setting 'widht'"):
        FAMILY.cost({"widht": 4, "fraction": 1.0})


def test_bf16_close_to_fp32(mnist_tensors):
    cfg = dict(width=8, fraction=1.0, train_limit=3000)
    fp32 = train_run(MnistRunConfig(**cfg, precision="fp32"), mnist_tensors)
    bf16 = train_run(MnistRunConfig(**cfg, precision="bf16"), mnist_tensors)
    assert abs(fp32.val_loss - bf16.val_loss) < 0.1 * fp32.val_loss


# ----------------------------------------------- the fast path vs the textbook loop

def _step_losses(result):
    """Per-step train losses (a run of at most CURVE_POINTS steps records every step)."""
    return np.array([loss for _, loss in result.curve])


@pytest.mark.parametrize("width, seed", [(4, 0), (11, 1)])
def test_fast_path_equals_the_textbook_loop_in_float64(mnist_tensors, width, seed):
    """Index batching, channels_last, fused Adam, pool-before-ReLU, the (h, w, c) flatten and the
    index-free evaluation pool change nothing but rounding: in float64 every step's loss agrees
    to 1e-12. (In fp32, Adam divides near-zero gradients by their own tiny scale, so rounding
    differences can grow to ~1e-3 over a run; float64 keeps them below Adam's eps.)"""
    d64 = MnistTensors(mnist_tensors.x_train.double(), mnist_tensors.y_train,
                       mnist_tensors.x_test.double(), mnist_tensors.y_test)
    cfg = MnistRunConfig(width=width, fraction=0.5, train_limit=2000, batch_size=64, seed=seed)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        fast = train_run(cfg, d64)
        val_loss, losses = textbook_run(cfg, d64)
    finally:
        torch.set_default_dtype(before)
    assert len(losses) == 16
    np.testing.assert_allclose(_step_losses(fast), losses, rtol=1e-12)
    assert fast.val_loss == pytest.approx(val_loss, rel=1e-6)  # evaluation sums fp32 logits


@pytest.mark.parametrize("width", [4, 6, 11, 23, 45])
def test_fast_path_equals_the_textbook_loop_in_fp32(mnist_tensors, width):
    """In fp32, the first steps (before Adam can amplify rounding) agree to 1e-6 (odd widths included)."""
    cfg = MnistRunConfig(width=width, fraction=1.0, train_limit=256, batch_size=64, precision="fp32")
    _, losses = textbook_run(cfg, mnist_tensors)
    np.testing.assert_allclose(_step_losses(train_run(cfg, mnist_tensors)), losses, rtol=1e-6)
