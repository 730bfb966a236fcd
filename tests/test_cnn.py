import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from scalinglab.families.mnist.model import MnistCNN, max_pool_2x2, num_params, train_flops_per_example, width_ladder


def test_ladder_is_the_exercise_sqrt2_ladder():
    assert width_ladder() == [4, 6, 8, 11, 16, 23, 32, 45, 64]


@pytest.mark.parametrize("width", [1, 4, 11, 23, 64])
def test_param_count_is_exact(width):
    model = MnistCNN(width, dropout=0.2)
    assert num_params(width) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("width", [4, 11, 45])
def test_train_flops_match_torch_flop_counter(width):
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


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(3, 5, 28, 28), (2, 4, 7, 9)])
def test_evaluation_pool_equals_max_pool2d(shape, dtype):
    """The index-free pool used without autograd gives max_pool2d's values exactly, ties and odd sizes included."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-3, 4, shape, generator=g).to(dtype).to(memory_format=torch.channels_last)
    with torch.no_grad():
        fast = max_pool_2x2(x)
    assert torch.equal(fast, F.max_pool2d(x, 2)) and fast.shape == F.max_pool2d(x, 2).shape
    x.requires_grad_(True)  # training takes the max_pool2d path, whose backward needs indices
    assert max_pool_2x2(x).grad_fn is not None
