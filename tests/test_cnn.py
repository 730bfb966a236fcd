import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from scalinglab.families.mnist.model import MnistCNN, num_params, train_flops_per_example, width_ladder


def test_ladder_is_the_exercise_sqrt2_ladder():
    assert width_ladder() == [4, 6, 8, 11, 16, 23, 32, 45, 64]


@pytest.mark.parametrize("width", [1, 4, 11, 23, 64])
def test_param_count_is_exact(width):
    model = MnistCNN(width, dropout=0.2)
    assert num_params(width) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("width", [4, 11, 45])
def test_train_flops_match_torch_flop_counter(width, monkeypatch):
    """torch's counter sees only its own ops, so the model runs on them here (the kernels compute the same layers)."""
    from scalinglab.families.mnist import kernels

    monkeypatch.setattr(kernels, "_library", lambda: None)
    model = MnistCNN(width)
    batch = 5
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.randn(batch, 1, 28, 28)).logsumexp(1).sum().backward()
    assert counter.get_total_flops() == batch * train_flops_per_example(width)


def test_flops_roughly_double_per_width_step():
    ladder = width_ladder()
    ratios = [train_flops_per_example(b) / train_flops_per_example(a) for a, b in zip(ladder, ladder[1:])]
    assert all(1.6 < r < 2.6 for r in ratios), ratios


