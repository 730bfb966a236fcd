"""The fused relu(max-pool) kernels give exactly torch's values and gradients."""

import pytest
import torch
import torch.nn.functional as F

from scalinglab.families.mnist import pool

BUILDS = {"native": (), "portable": ("-mno-avx512f",)}


def _torch(x):
    return torch.relu(F.max_pool2d(x, 2))


@pytest.fixture(scope="module", params=list(BUILDS))
def lib(request):
    built = pool.build(BUILDS[request.param])
    if built is None:
        pytest.skip("no C compiler: the model uses torch's ops, which these tests compare against")
    return built


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(3, 5, 28, 28), (2, 4, 7, 9), (4, 37, 14, 14), (1, 16, 3, 2)])
def test_kernel_equals_torch_with_ties(lib, shape, dtype):
    """Small integers make most windows tie: the same element must win as in max_pool2d."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-2, 3, shape, generator=g).to(dtype).contiguous(memory_format=torch.channels_last)
    up = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2, generator=g).to(dtype)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = _torch(a), pool.pool_relu(b, lib)
    ya.backward(up)
    yb.backward(up)
    assert yb.grad_fn is not None and "PoolRelu" in type(yb.grad_fn).__name__  # the kernel ran
    assert torch.equal(ya, yb) and torch.equal(a.grad, b.grad)
    assert (a.grad != 0).sum() < x.numel() / 4 + 1  # one winner per window at most, ties or not


def test_kernel_matches_torch_on_nan_and_layouts(lib):
    """A NaN wins its window as in torch; an NCHW input gives the same result as channels_last."""
    x = torch.randn(2, 3, 6, 6)
    x[0, 1, 2, 3] = float("nan")
    x[1, 2, 0, 0] = -float("inf")
    up = torch.randn(2, 3, 3, 3)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = _torch(a), pool.pool_relu(b, lib)
    ya.backward(up)
    yb.backward(up)
    assert torch.equal(ya.isnan(), yb.isnan()) and torch.equal(ya.nan_to_num(), yb.nan_to_num())
    assert torch.equal(a.grad, b.grad)


def test_model_gradients_equal_torch_ops(monkeypatch):
    """The whole CNN with the kernels has the gradients it has with torch's pool and ReLU."""
    from scalinglab.families.mnist.model import MnistCNN

    if pool.build() is None:
        pytest.skip("no C compiler")
    torch.manual_seed(0)
    model = MnistCNN(6).to(memory_format=torch.channels_last)
    x = torch.randn(8, 1, 28, 28).round()  # flat regions tie, as MNIST's background does
    y = torch.randint(0, 10, (8,))

    def grads():
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        return [p.grad.clone() for p in model.parameters()]

    fused = grads()
    monkeypatch.setattr(pool, "_library", lambda: None)
    plain = grads()
    assert all(torch.equal(a, b) for a, b in zip(fused, plain))
