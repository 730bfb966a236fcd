"""The fused relu(max-pool) kernels give exactly torch's values and gradients."""

import pytest
import torch
import torch.nn.functional as F

from scalinglab.families.mnist import kernels as pool

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
    """The whole CNN with the kernels has the gradients it has with torch's ops, up to fp32 rounding."""
    from scalinglab.families.mnist.model import MnistCNN

    built = pool.build()
    if built is None:
        pytest.skip("no C compiler")
    monkeypatch.setattr(pool, "_library", lambda: built)  # this machine's build, even where the model skips it
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
    for a, b in zip(fused, plain):  # the pool is exact; the first conv sums in another order
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("flags, used", [((), None), (("-mno-avx512f",), False)])
def test_only_the_avx512_build_replaces_torch_ops(monkeypatch, flags, used):
    """The portable loops lose to torch's ops on AVX2 CPUs, so the model runs them only with AVX-512."""
    built = pool.build(flags)
    if built is None:
        pytest.skip("no C compiler")
    if used is None:  # this machine's own build: used exactly when it has the AVX-512 loops
        used = built.vector_lanes() > 1
    monkeypatch.setattr(pool, "build", lambda *a: built)
    monkeypatch.delenv("SCALINGLAB_NO_C_KERNELS", raising=False)
    pool._library.cache_clear()
    try:
        assert (pool._library() is built) is used
    finally:
        pool._library.cache_clear()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernel_and_fallback_agree_without_autograd(lib, dtype):
    """Evaluation runs the kernel where it exists and the strided fallback elsewhere: the same values."""
    x = torch.randint(-2, 3, (3, 6, 9, 8), generator=torch.Generator().manual_seed(1)).to(dtype)
    with torch.no_grad():
        fast, fallback = pool.pool_relu(x, lib), torch.relu(pool._eval_pool(x))
    assert torch.equal(fast, fallback) and torch.equal(fast, _torch(x))


@pytest.mark.parametrize("groups,width", [(1, 4), (1, 23), (3, 5), (2, 16)])
def test_first_conv_equals_torch(lib, groups, width):
    """Values and weight/bias gradients of the direct first convolution match F.conv2d (fp32 rounding)."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, groups, 9, 7, generator=g)
    weight = torch.randn(groups * width, 1, 3, 3, generator=g, requires_grad=True)
    bias = torch.randn(groups * width, generator=g, requires_grad=True)
    up = torch.randn(5, groups * width, 9, 7, generator=g)
    ref = F.conv2d(x, weight, bias, padding=1, groups=groups)
    ref.backward(up)
    ref_grads = weight.grad.clone(), bias.grad.clone()
    weight.grad = bias.grad = None
    out = pool.conv1(x, weight, bias, lib)
    out.backward(up)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weight.grad, ref_grads[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(bias.grad, ref_grads[1], rtol=1e-4, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, low_ref = pool.conv1(x, weight, bias, lib), F.conv2d(x, weight, bias, padding=1, groups=groups)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), low_ref.float(), rtol=2e-2, atol=2e-2)
