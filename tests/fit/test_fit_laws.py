"""Analytic gradients of every law and loss, checked against finite differences."""

import numpy as np
import pytest
from scipy.optimize import check_grad

from scalinglab.core import laws
from scalinglab.core.losses import huber, huber_grad, huber_objective

rng = np.random.default_rng(0)
N = np.logspace(7, 10, 12)
D = np.logspace(9, 12, 12)[rng.permutation(12)]
W = rng.uniform(0.5, 1.5, 12)          # random weights turn a vector function into a scalar one


def _natural(fn, grad, inputs, p0, rel=1e-6):
    def f(p):
        return float(W @ fn(*inputs, *p))

    def g(p):
        return grad(*inputs, *p) @ W
    err = check_grad(f, g, np.asarray(p0, float), epsilon=1e-7 * np.maximum(np.abs(p0), 1e-3))
    assert err <= rel * max(1.0, np.linalg.norm(g(np.asarray(p0, float))))


@pytest.mark.parametrize("p", [(2.0, 3e3, 0.2), (0.1, 50.0, 0.7)])
def test_power_law_grad(p):
    _natural(laws.power_law, laws.power_law_grad, (np.logspace(15, 21, 12),), p)


@pytest.mark.parametrize("p", [(1.69, 406.4, 410.7, 0.34, 0.28), (1.8, 480.0, 2100.0, 0.35, 0.37)])
def test_chinchilla_grad(p):
    _natural(laws.chinchilla, laws.chinchilla_grad, (N, D), p)


@pytest.mark.parametrize("p", [(8.8e13, 5.4e13, 0.076, 0.095), (1e12, 1e13, 0.3, 0.2)])
def test_kaplan_grad(p):
    _natural(laws.kaplan, laws.kaplan_grad, (N, D), p, rel=1e-5)


def _log_form(log_fn, inputs, theta0):
    u = rng.standard_normal(12)

    def f(th):
        return float(log_fn(th[None], *inputs)[0][0] @ u)

    def g(th):
        return log_fn(th[None], *inputs)[1](u[None])[0]
    assert check_grad(f, g, np.asarray(theta0, float)) < 1e-5 * max(1.0, np.linalg.norm(g(np.asarray(theta0))))


def test_log_forms_grad():
    _log_form(laws.power_law_log, (np.log(np.logspace(15, 21, 12)),), [0.7, 8.0, 0.2])
    _log_form(laws.chinchilla_log, (np.log(N), np.log(D)), [0.5, 6.0, 6.0, 0.34, 0.28])
    _log_form(laws.chinchilla_log, (np.log(N), np.log(D)), [-1.0, 20.0, 3.0, 1.5, 0.1])
    _log_form(laws.kaplan_log, (np.log(N), np.log(D)), [np.log(8.8e13), np.log(5.4e13), 0.076, 0.095])


def test_log_forms_match_natural_forms():
    th = np.array([[np.log(1.69), np.log(406.4), np.log(410.7), 0.34, 0.28]])
    ll, _ = laws.chinchilla_log(th, np.log(N), np.log(D))
    np.testing.assert_allclose(np.exp(ll[0]), laws.chinchilla(N, D, 1.69, 406.4, 410.7, 0.34, 0.28), rtol=1e-12)
    th = np.array([[np.log(8.8e13), np.log(5.4e13), 0.076, 0.095]])
    ll, _ = laws.kaplan_log(th, np.log(N), np.log(D))
    np.testing.assert_allclose(np.exp(ll[0]), laws.kaplan(N, D, 8.8e13, 5.4e13, 0.076, 0.095), rtol=1e-12)
    x = np.logspace(15, 21, 12)
    ll, _ = laws.power_law_log(np.array([[np.log(2.0), np.log(3e3), 0.2]]), np.log(x))
    np.testing.assert_allclose(np.exp(ll[0]), laws.power_law(x, 2.0, 3e3, 0.2), rtol=1e-12)


def test_batched_rows_are_independent():
    th = np.array([[0.5, 6.0, 6.0, 0.34, 0.28], [0.6, 7.0, 5.0, 0.4, 0.2]])
    ll, vjp = laws.chinchilla_log(th, np.log(N), np.log(D))
    for i in range(2):
        ll_i, vjp_i = laws.chinchilla_log(th[i:i + 1], np.log(N), np.log(D))
        np.testing.assert_allclose(ll[i], ll_i[0])
        np.testing.assert_allclose(vjp(np.ones((2, 12)))[i], vjp_i(np.ones((1, 12)))[0])


def test_huber_value_and_grad():
    delta = 1e-3
    r = np.array([-3e-3, -1e-3, -2e-4, 0.0, 5e-4, 1e-3, 0.02])
    np.testing.assert_allclose(huber(r, delta)[[2, 4]], 0.5 * r[[2, 4]] ** 2)
    np.testing.assert_allclose(huber(r, delta)[[0, 6]], delta * (np.abs(r[[0, 6]]) - delta / 2))
    # continuous at |r| = delta
    assert huber(np.array([delta - 1e-12]), delta)[0] == pytest.approx(huber(np.array([delta + 1e-12]), delta)[0])
    pts = rng.uniform(-5e-3, 5e-3, 40)
    pts = pts[np.abs(np.abs(pts) - delta) > 1e-6]          # the kink of the derivative is not differentiable twice
    err = check_grad(lambda v: huber(v, delta).sum(), lambda v: huber_grad(v, delta), pts, epsilon=1e-9)
    assert err < 1e-5 * np.linalg.norm(huber_grad(pts, delta))


@pytest.mark.parametrize("weights", [None, rng.integers(0, 3, 12).astype(float)])
def test_full_objective_grad(weights):
    """Summed Huber of log residuals through the Chinchilla law: the gradient the optimiser uses."""
    log_y = np.log(laws.chinchilla(N, D, 1.8, 480.0, 2100.0, 0.35, 0.37)) + 0.01 * rng.standard_normal(12)

    def f(th):
        ll, _ = laws.chinchilla_log(th[None], np.log(N), np.log(D))
        return float(huber_objective(ll, log_y, 1e-3, weights)[0][0])

    def g(th):
        ll, vjp = laws.chinchilla_log(th[None], np.log(N), np.log(D))
        return vjp(huber_objective(ll, log_y, 1e-3, weights)[1])[0]
    th0 = np.array([0.6, 6.2, 7.6, 0.35, 0.37])
    assert check_grad(f, g, th0, epsilon=1e-8) < 1e-4 * np.linalg.norm(g(th0))   # FD noise near the kinks


def test_log_sum_exp_survives_overflow_and_underflow():
    """Rows whose terms overflow exp() fall back to the max-subtracted formula."""
    th = np.array([[0.5, 800.0, 6.0, 0.0, 0.28], [-900.0, -800.0, -850.0, 0.0, 0.0], [0.5, 6.0, 6.0, 0.34, 0.28]])
    ll, vjp = laws.chinchilla_log(th, np.log(N), np.log(D))
    assert np.isfinite(ll).all()
    np.testing.assert_allclose(ll[0], 800.0, rtol=1e-12)
    np.testing.assert_allclose(ll[1], -800.0 + np.log1p(np.exp(-50.0) + np.exp(-100.0)), rtol=1e-12)
    ref, _ = laws.chinchilla_log(th[2:], np.log(N), np.log(D))
    np.testing.assert_allclose(ll[2], ref[0])
    g = vjp(np.ones((3, 12)))
    assert np.isfinite(g).all() and g[0, 1] == pytest.approx(12.0)       # all weight on the A term
    ll, _ = laws.power_law_log(np.array([[0.0, 1000.0, 0.0]]), np.zeros(3))
    np.testing.assert_allclose(ll, 1000.0)
