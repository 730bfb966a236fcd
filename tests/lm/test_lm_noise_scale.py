"""The gradient noise scale estimator against problems with a known answer."""

import math

import pytest
import torch

from scalinglab.core.noise_scale import NoiseScale, NormSample, accumulate_gradients, estimate_noise_scale


def test_two_batch_size_estimates_invert_the_expectations():
    """E|G_B|^2 = |G|^2 + tr(Sigma)/B; feeding exact expectations returns |G|^2 and tr(Sigma)."""
    g2, trace = 0.37, 12.5
    for bs, bb in [(4, 16), (1, 2), (32, 1024)]:
        s = NormSample(b_small=bs, b_big=bb, g_small_sq=g2 + trace / bs, g_big_sq=g2 + trace / bb)
        est_g2, est_trace = s.estimates()
        assert est_g2 == pytest.approx(g2, rel=1e-12)
        assert est_trace == pytest.approx(trace, rel=1e-12)


def test_ratio_of_means_and_ema():
    ns = NoiseScale()
    for g2, tr in [(1.0, 10.0), (3.0, 2.0)]:  # single-step B_simple 10 and 0.67; ratio of means is 6/2
        ns.update(NormSample(b_small=1, b_big=2, g_small_sq=g2 + tr, g_big_sq=g2 + tr / 2))
    assert ns.b_simple == pytest.approx(3.0)
    ema = NoiseScale(decay=0.9)
    for _ in range(5):
        ema.update(NormSample(b_small=2, b_big=8, g_small_sq=1 + 4 / 2, g_big_sq=1 + 4 / 8))
    assert ema.b_simple == pytest.approx(4.0)  # bias-corrected: constant input, constant output
    assert math.isnan(NoiseScale().b_simple)


def _regression_batches(n_batches, batch, d, sigma, seed):
    g = torch.Generator().manual_seed(seed)
    w_star = torch.randn(d, generator=g)
    batches = []
    for _ in range(n_batches):
        x = torch.randn(batch, d, generator=g)
        y = x @ w_star + sigma * torch.randn(batch, generator=g)
        batches.append((x, y))
    return w_star, batches


def _loss(model, batch):
    x, y = batch
    return 0.5 * (model(x).squeeze(-1) - y).square().mean()


def test_accumulated_gradient_is_the_big_batch_gradient():
    torch.manual_seed(0)
    _, batches = _regression_batches(4, 8, 5, 0.5, seed=1)
    model = torch.nn.Linear(5, 1, bias=False)
    _, sample = accumulate_gradients(model, _loss, batches)
    accumulated = model.weight.grad.clone()
    model.weight.grad = None
    _loss(model, (torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]))).backward()
    assert torch.allclose(accumulated, model.weight.grad, atol=1e-6)
    assert sample.b_small == 8 and sample.b_big == 32
    assert sample.g_big_sq == pytest.approx(float(accumulated.square().sum()), rel=1e-5)


def test_linear_regression_noise_scale_matches_the_analytic_value():
    """Gaussian inputs x ~ N(0, I_d), y = x.w* + N(0, s^2), loss (x.w - y)^2 / 2, error delta = w - w*.

    Per-example gradient x (x.delta - eps): G = delta and Sigma = (|delta|^2 + s^2) I + delta delta^T,
    so B_simple = (d (|delta|^2 + s^2) + |delta|^2) / |delta|^2.
    """
    d, sigma = 8, 0.8
    w_star, batches = _regression_batches(3000, 8, d, sigma, seed=2)
    model = torch.nn.Linear(d, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_((w_star + torch.full((d,), 0.35)).unsqueeze(0))
    delta2 = float((model.weight.detach()[0] - w_star).square().sum())
    expected = (d * (delta2 + sigma ** 2) + delta2) / delta2
    est = estimate_noise_scale(model, _loss, batches, per_big_batch=4)
    assert est.n_ == 750
    assert est.g2_ == pytest.approx(delta2, rel=0.1)
    assert est.trace_ == pytest.approx(d * (delta2 + sigma ** 2) + delta2, rel=0.05)
    assert est.b_simple == pytest.approx(expected, rel=0.12)
    assert model.weight.grad is None  # measuring leaves the model untouched


def test_mnist_noise_scale_along_training_runs_on_the_cnn_family():
    from scalinglab.families.mnist.noise_scale import mnist_noise_scale

    rows = mnist_noise_scale(4, batch_size=64, n_small=4, train_limit=1280, points=2, test=False)
    assert [r["images"] for r in rows] == [640, 1280]
    assert all(r["steps"] == 10 for r in rows)
    assert rows[1]["train_loss"] < rows[0]["train_loss"]
    assert rows[0]["g2"] > 0 and rows[0]["trace"] > 0 and rows[0]["b_simple"] > 0
