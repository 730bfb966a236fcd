import math

import pytest
from scalinglab.errors import ConfigError
from scalinglab.models.cnn import train_flops_per_example
from scalinglab.train.mnist import FAMILY, MnistRunConfig, data_order, train_run

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
