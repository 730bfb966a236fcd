"""Large tables: starts screened on a subsample reach the full fit's optimum; the objective's point blocks are exact."""

import numpy as np
import pandas as pd
import pytest

from fit_synthetic import CHINCHILLA_TRUE, POWER_TRUE
from scalinglab.core import laws
from scalinglab.fit import ChinchillaFit, PowerLawFit
from scalinglab.fit import parametric


def random_chinchilla(n, seed=0, noise=0.01):
    rng = np.random.default_rng(seed)
    N, D = 10 ** rng.uniform(7, 9.5, n), 10 ** rng.uniform(8.5, 11.5, n)
    loss = laws.chinchilla(N, D, **CHINCHILLA_TRUE) * np.exp(noise * rng.standard_normal(n))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


def test_subsampled_screening_reaches_the_full_optimum():
    runs = random_chinchilla(6000)
    full = ChinchillaFit(starts="coarse", screen_points=None).fit(runs)
    sub = ChinchillaFit(starts="coarse", screen_points=1024).fit(runs)
    assert sub.n_screen_points_ == 1024 and full.n_screen_points_ == 6000
    assert sub.converged_ and sub.n_starts_ == 243
    assert sub.objective_ == pytest.approx(full.objective_, rel=1e-9)
    for k, v in full.params_.items():
        assert sub.params_[k] == pytest.approx(v, rel=1e-4), k
    assert sub.alpha_ == pytest.approx(CHINCHILLA_TRUE["alpha"], abs=0.01)


def test_power_law_on_many_points_matches_the_unsubsampled_fit():
    rng = np.random.default_rng(1)
    x = 10 ** rng.uniform(15, 21, 10000)
    runs = pd.DataFrame({"C": x, "loss": laws.power_law(x, **POWER_TRUE) * np.exp(0.01 * rng.standard_normal(x.size))})
    a = PowerLawFit().fit(runs)
    b = PowerLawFit(screen_points=None).fit(runs)
    assert a.objective_ == pytest.approx(b.objective_, rel=1e-9)
    assert a.alpha_ == pytest.approx(b.alpha_, rel=1e-5)


def test_point_blocks_give_the_same_objective(monkeypatch):
    """The objective summed over point blocks equals the one-block sum (blocks bound memory, not results)."""
    runs = random_chinchilla(5000, seed=2)
    log_in = [np.log(runs[c].to_numpy()) for c in ("N", "D")]
    log_y = np.log(runs["loss"].to_numpy())
    theta = ChinchillaFit._to_theta(np.array([[1.7, 400, 1500, 0.34, 0.3], [1.5, 300, 1000, 0.3, 0.35]]))
    w = np.random.default_rng(0).integers(0, 3, (2, 5000)).astype(float)
    one = parametric.batched_objective(parametric.ChinchillaFit._log_law, log_in, log_y, weights=w,
                                       row_group=np.arange(2))(theta, np.arange(2))
    calls = []
    monkeypatch.setattr(parametric, "_BLOCK", 1000)
    monkeypatch.setattr(parametric, "_MIN_POINTS", 300)
    many = parametric.batched_objective(parametric.ChinchillaFit._log_law, log_in, log_y, weights=w,
                                        row_group=np.arange(2), progress=calls.append)(theta, np.arange(2))
    np.testing.assert_allclose(many[0], one[0], rtol=1e-12)
    np.testing.assert_allclose(many[1], one[1], rtol=1e-10)
    assert calls == [2]


def test_progress_bar_on_stderr_for_large_tables(monkeypatch, capsys):
    monkeypatch.setattr(parametric, "PROGRESS_POINTS", 3000)
    real = parametric.tqdm
    monkeypatch.setattr(parametric, "tqdm", lambda **kw: real(**{**kw, "delay": 0}))
    PowerLawFit().fit(random_chinchilla(3000).rename(columns={"N": "C"}))
    assert "power fit on 3,000 runs" in capsys.readouterr().err
