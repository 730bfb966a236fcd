"""The IsoFLOP bias flag fires on a synthetic surface sampled off-centre and wide, not on a centred, narrow one."""

import numpy as np
import pandas as pd

from fit_synthetic import CHINCHILLA_TRUE
from scalinglab.core import laws
from scalinglab.fit import isoflop_profiles
from scalinglab.fit.select import isoflop_bias


def sweep(offset_decades, width_decades, noise, seed=0, k=9):
    """Per budget, k sizes spanning width_decades, centred offset_decades above the true optimum."""
    rng = np.random.default_rng(seed)
    p = CHINCHILLA_TRUE
    s = p["alpha"] + p["beta"]
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / s)
    rows = []
    for C in np.logspace(18, 21, 5):
        n_opt = G * (C / 6) ** (p["beta"] / s)
        for N in n_opt * 10 ** (offset_decades + np.linspace(-width_decades / 2, width_decades / 2, k)):
            D = C / (6 * N)
            rows.append({"N": N, "D": D, "C": C,
                         "loss": laws.chinchilla(N, D, **p) * np.exp(noise * rng.standard_normal())})
    return pd.DataFrame(rows)


def test_off_centre_wide_sampling_is_flagged_in_the_right_direction():
    runs = sweep(offset_decades=1.0, width_decades=3.0, noise=0.001)
    iso = isoflop_profiles(runs)
    diag = isoflop_bias(iso, runs)
    assert diag["flag"].all(), diag
    # the parabola's own minimum really is off by about the estimated bias (truth known here)
    p = CHINCHILLA_TRUE
    s = p["alpha"] + p["beta"]
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / s)
    true_opt = G * (iso.profiles["C"] / 6) ** (p["beta"] / s)
    actual = np.log10(iso.profiles["N_opt"] / true_opt)
    np.testing.assert_allclose(diag["bias_decades"], actual, atol=0.01)
    assert (actual > 0.05).all()
    # sizes sampled mostly above the optimum push the parabola's minimum up
    assert (diag["asymmetry"] > 0).all() and (diag["bias_decades"] > 0).all()
    assert "above the surface's" in diag["note"].iloc[0]


def test_centred_narrow_sampling_is_not_flagged():
    runs = sweep(offset_decades=0.0, width_decades=1.0, noise=0.003)
    diag = isoflop_bias(isoflop_profiles(runs), runs)
    assert not diag["flag"].any(), diag
    assert (np.abs(diag["bias_decades"]) < diag["half_width_decades"]).all()
