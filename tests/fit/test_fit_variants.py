"""Variants as effective compute: a known compute multiplier is recovered within its interval."""

import numpy as np
import pandas as pd
import pytest

from fit_synthetic import CHINCHILLA_TRUE, chinchilla_runs
from scalinglab.core import laws
from scalinglab.errors import FitError
from scalinglab.fit.variants import compute_multiplier, fit_variants, frontier_loss

POWER = dict(E=2.0, A=3.0e3, alpha=0.2)


def power_variants(k=2.0, alpha_variant=None, seed=0, noise=0.01, n=30):
    """Reference L(C) and a variant worth k times the compute: L_v(C) = L_ref(k C), with seed replicates;
    or, with ``alpha_variant``, a variant with another exponent that crosses the reference at C = 1e18."""
    rng = np.random.default_rng(seed)
    C = np.repeat(np.logspace(15, 21, n // 3), 3)
    seeds = np.tile([0, 1, 2], n // 3)
    ref = laws.power_law(C, **POWER)
    var = laws.power_law(k * C, **POWER) if alpha_variant is None else \
        laws.power_law(C, POWER["E"], POWER["A"] * 1e18 ** (alpha_variant - POWER["alpha"]), alpha_variant)
    loss = np.r_[ref, var] * np.exp(noise * rng.standard_normal(2 * C.size))
    return pd.DataFrame({"C": np.r_[C, C], "loss": loss, "seed": np.r_[seeds, seeds],
                         "dropout": np.r_[np.zeros(C.size), np.full(C.size, 0.2)]})


def test_power_law_multiplier_recovered_within_interval():
    # one draw; the exponent test is wrong on 5% of draws by design (see the slow test for the rates)
    out = fit_variants(power_variants(k=2.0, seed=3), "power", variant="dropout", reference="0", n_resamples=200)
    assert out.reference == 0.0                                # "0" from a command line names the 0.0 variant
    row = out.table.set_index("variant").loc[0.2]
    assert row["k_lo"] < 2.0 < row["k_hi"]
    assert row["k"] == pytest.approx(2.0, rel=0.15)
    assert row["k_hi"] / row["k_lo"] < 2.0                     # informative, not a vacuous interval
    assert out.shared["alpha"] == pytest.approx(0.2, abs=0.02)
    assert row["exponent_p"] > 0.05                            # same exponent: not flagged
    assert out.objective_joint >= out.objective_separate - 1e-12
    assert "worth" in out.summary() and out.to_dict()["variants"][1]["variant"] == 0.2


def test_different_exponents_are_flagged():
    out = fit_variants(power_variants(alpha_variant=0.3, noise=0.005), "power", variant="dropout", n_resamples=200)
    row = out.table.set_index("variant").loc[0.2]
    assert row["exponent_p"] < 0.05
    assert row["d_alpha_lo"] > 0


def test_chinchilla_multiplier_along_the_frontier():
    """Scaling A and B by s scales L* - E by s along the frontier, so k = s^(-1/gamma), gamma = alpha beta/(alpha+beta)."""
    k_true = 3.0
    gamma = CHINCHILLA_TRUE["alpha"] * CHINCHILLA_TRUE["beta"] / (CHINCHILLA_TRUE["alpha"] + CHINCHILLA_TRUE["beta"])
    s = k_true ** -gamma
    var = dict(CHINCHILLA_TRUE, A=CHINCHILLA_TRUE["A"] * s, B=CHINCHILLA_TRUE["B"] * s)
    runs = pd.concat([chinchilla_runs(seed=1, n=6).assign(opt="adam"),
                      chinchilla_runs(seed=2, n=6, params=var).assign(opt="lion")], ignore_index=True)
    out = fit_variants(runs, "chinchilla", variant="opt", n_resamples=100)
    row = out.table.set_index("variant").loc["lion"]
    assert row["k_lo"] < k_true < row["k_hi"]
    assert row["k"] == pytest.approx(k_true, rel=0.2)
    # the definition: the variant's frontier loss at C equals the reference's at k C
    p = {k: np.array([v]) for k, v in CHINCHILLA_TRUE.items()}
    q = {k: np.array([v]) for k, v in var.items()}
    assert compute_multiplier("chinchilla", p, q, 1e20)[0] == pytest.approx(k_true, rel=1e-6)
    assert frontier_loss("chinchilla", q, 1e20)[0] == pytest.approx(frontier_loss("chinchilla", p, 3e20)[0], rel=1e-9)


def test_bad_variant_input():
    runs = power_variants()
    with pytest.raises(FitError, match="not in the runs table"):
        fit_variants(runs, "power", variant="nope")
    with pytest.raises(FitError, match="at least two"):
        fit_variants(runs[runs["dropout"] == 0], "power", variant="dropout")
    with pytest.raises(FitError, match="reference 0.5 is not a value"):
        fit_variants(runs, "power", variant="dropout", reference=0.5)
    with pytest.raises(FitError, match="covers the"):
        fit_variants(runs, "broken_power", variant="dropout")


@pytest.mark.slow
def test_multiplier_coverage_and_exponent_test_size():
    """Over 30 draws: the 95% interval of k covers the truth 85-100% of the time (measured 97%) and the
    exponent test rejects equal exponents at most 15% of the time (measured 3%)."""
    rejects = covers = 0
    for seed in range(30):
        row = fit_variants(power_variants(k=2.0, seed=seed), "power", variant="dropout", n_resamples=200,
                           random_state=seed).table.iloc[1]
        rejects += row["exponent_p"] < 0.05
        covers += row["k_lo"] < 2.0 < row["k_hi"]
    assert covers / 30 >= 0.85 and rejects / 30 <= 0.15
