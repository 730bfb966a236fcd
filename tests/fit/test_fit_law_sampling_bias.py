"""fit_law's IsoFLOP result carries the sampling-bias diagnostic of every budget (issue 13)."""

import numpy as np
import pandas as pd

from scalinglab.fit import fit_law

E, A, B, ALPHA, BETA = 1.7, 400.0, 410.0, 0.34, 0.28


def isoflop_sweep(low: float, high: float, *, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """7 sizes per budget from low to high times each budget's true optimum, D = C / 6N."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in (1e18, 1e19, 1e20, 1e21):
        n_opt = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA)) * (c / 6) ** (BETA / (ALPHA + BETA))
        for n in n_opt * np.geomspace(low, high, 7):
            d = c / (6 * n)
            loss = (E + A / n ** ALPHA + B / d ** BETA) * np.exp(noise * rng.standard_normal())
            rows.append({"N": n, "D": d, "C": c, "loss": loss})
    return pd.DataFrame(rows)


def test_an_off_centre_sweep_is_flagged_and_a_centred_one_is_not():
    off = fit_law(isoflop_sweep(0.5, 300, noise=0.0005), "isoflop", n_resamples=20)
    centred = fit_law(isoflop_sweep(1 / 2, 2, noise=0.0005), "isoflop", n_resamples=20)
    off_bias, centred_bias = off.tables["sampling_bias"], centred.tables["sampling_bias"]
    assert off_bias["flag"].all() and (off_bias["bias_decades"] > 0).all()  # pushed towards the sampled side
    assert not centred_bias["flag"].any()
    assert any("centre the sizes" in w for w in off.warnings)
    assert not any("centre the sizes" in w for w in centred.warnings)
    assert "sampling_bias" in off.to_dict()["tables"]
