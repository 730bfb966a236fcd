"""The batched L-BFGS: same answers as scipy, honest status flags."""

import numpy as np
from scipy.optimize import minimize, rosen, rosen_der

from scalinglab.core import optim


def rosen_batch(x, rows):
    """Rosenbrock's function and gradient for each row of x (scipy's rosen/rosen_der, vectorised)."""
    a, b = x[:, :-1], x[:, 1:]
    f = (100 * (b - a * a) ** 2 + (1 - a) ** 2).sum(1)
    g = np.zeros_like(x)
    g[:, :-1] += -400 * a * (b - a * a) - 2 * (1 - a)
    g[:, 1:] += 200 * (b - a * a)
    return f, g


def test_vectorised_rosenbrock_is_scipys():
    x = np.random.default_rng(1).uniform(-2, 2, (3, 4))
    f, g = rosen_batch(x, None)
    np.testing.assert_allclose(f, [rosen(v) for v in x])
    np.testing.assert_allclose(g, [rosen_der(v) for v in x])


def test_rosenbrock_from_many_starts_matches_scipy():
    x0 = np.random.default_rng(0).uniform(-2, 2, (12, 3))
    res = optim.lbfgs(rosen_batch, x0, max_iter=2000, gtol=1e-8)
    assert res.converged.all()
    for i in range(3):          # a few scipy references suffice (scipy's L-BFGS-B is slow under BLAS threading)
        ref = minimize(rosen, x0[i], jac=rosen_der, method="L-BFGS-B", options={"gtol": 1e-10}).x
        np.testing.assert_allclose(res.x[i], ref, atol=1e-5)
    np.testing.assert_allclose(res.x, 1.0, atol=1e-5)


def test_rows_say_which_problem_is_evaluated():
    targets = np.arange(6.0)[:, None] * np.ones((1, 2))       # problem i: minimum at (i, i)

    def fun(x, rows):
        d = x - targets[rows]
        return 0.5 * (d * d).sum(1) * (1 + rows), d * (1 + rows)[:, None]
    res = optim.lbfgs(fun, np.zeros((6, 2)))
    np.testing.assert_allclose(res.x, targets, atol=1e-6)
    assert (res.status == optim.GTOL).all()


def test_iteration_limit_is_reported():
    res = optim.lbfgs(rosen_batch, np.full((2, 4), -1.5), max_iter=3)
    assert (res.status == optim.MAX_ITER).all() and not res.converged.any()
    assert "iteration limit" in res.message(0)


def test_non_finite_start_is_reported():
    def fun(x, rows):
        f = (x ** 2).sum(1)
        f[x[:, 0] > 10] = np.nan
        return f, 2 * x
    res = optim.lbfgs(fun, np.array([[1.0, 1.0], [20.0, 1.0]]))
    assert res.status[0] == optim.GTOL and res.status[1] == optim.NOT_FINITE


def test_scipy_style_ftol_stops_early():
    res = optim.lbfgs(rosen_batch, np.full((1, 3), -1.0), ftol=1e-1)
    assert res.status[0] == optim.FTOL
