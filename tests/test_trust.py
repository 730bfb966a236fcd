"""A study's trust sections on synthetic studies with a known truth: the variant multiplier, the chosen law, the
IsoFLOP sampling flag (issue 13). The fit library's own recovery tests are in tests/fit (select, variants, noise)."""

import numpy as np
import pandas as pd
import pytest

from scalinglab.core import laws
from scalinglab.studies.analysis import analyse_study
from scalinglab.studies.load import LoadedStudy
from scalinglab.studies.points import study_points

LAW = dict(E=0.5, A=400.0, B=410.0, alpha=0.34, beta=0.28)   # L(N, D), Chinchilla's form and rough scale
SCALE = 2.0            # the "better" recipe trains as if N and D were both twice as large: worth SCALE^2 compute
N_RESAMPLES = 30


def study(rows: list[dict], variant_keys=(), noise=0.01, seeds=(0, 1)) -> LoadedStudy:
    """A LoadedStudy of complete runs with loss = law * seed noise; config keys n, d and the variant keys."""
    runs = []
    for i, cfg in enumerate(rows):
        for seed in seeds:
            rng = np.random.default_rng([i, seed])
            runs.append({**{k: v for k, v in cfg.items() if k != "loss"}, "seed": seed, "key": f"{i}-{seed}",
                         "status": "complete", "params": cfg["n"], "examples": cfg["d"],
                         "flops": 6.0 * cfg["n"] * cfg["d"],
                         "val_loss": cfg["loss"] * np.exp(noise * rng.standard_normal())})
    runs = pd.DataFrame(runs)
    keys = ["n", "d", *variant_keys]
    return LoadedStudy(name="synthetic", family="synthetic", info={}, runs=runs,
                       points=study_points(runs, config_keys=keys),
                       design={"variant_keys": tuple(variant_keys), "seed_key": "seed"}, setting_keys=tuple(keys))


def analyse(loaded):
    return analyse_study(loaded, n_resamples=N_RESAMPLES, chinchilla_starts="coarse")


@pytest.fixture(scope="module")
def variant_analysis():
    """A 5 x 5 grid of (N, D) per recipe; 'better' follows the law at (SCALE N, SCALE D)."""
    rows = []
    for recipe, m in (("base", 1.0), ("better", SCALE)):
        for n in np.logspace(5, 7, 5):
            for d in np.logspace(6, 8, 5):
                rows.append({"n": float(n), "d": float(d), "recipe": recipe,
                             "loss": float(laws.chinchilla(m * n, m * d, **LAW))})
    return analyse(study(rows, variant_keys=("recipe",)))


def test_a_known_compute_multiplier_is_recovered_within_its_interval(variant_analysis):
    v = variant_analysis.variants
    assert v is not None and v.reference == "base" and v.law == "chinchilla"
    row = v.table.set_index("variant").loc["better"]
    assert row["k_lo"] <= SCALE ** 2 <= row["k_hi"], row
    assert row["k_hi"] / row["k_lo"] < 2            # an interval that says something
    assert row["exponent_p"] > 0.05                  # the exponents are the same by construction
    text = variant_analysis.summary().comparison
    assert f"recipe better is worth {row['k']:.3g}× the compute of recipe base" in text
    assert f"{row['k_lo']:.3g} to {row['k_hi']:.3g}" in text and "no evidence they differ" in text
    assert variant_analysis.to_dict()["variants"]["variants"][1]["k"] == pytest.approx(row["k"])


def test_law_selection_names_the_true_form(variant_analysis):
    for g in variant_analysis.groups:
        sel = g.law_selection
        assert sel.chosen == "chinchilla", sel.table
        assert g.selected is g.fits["chinchilla"]
        assert sel.table.loc["chinchilla", "score"] < sel.table.drop(index="chinchilla")["score"].min()
    summary = variant_analysis.summary()
    text = " ".join(summary.findings)
    assert "Law selection by back-test: chinchilla has the lowest mean back-test RMS log error" in text
    assert "chinchilla (chosen)" in variant_analysis.summary_text()            # the per-law table


def isoflop_rows(offset_decades: float, width_decades: float, k: int = 7) -> list[dict]:
    """Per budget, k sizes spanning width_decades, centred offset_decades above the law's optimum."""
    s = LAW["alpha"] + LAW["beta"]
    G = (LAW["alpha"] * LAW["A"] / (LAW["beta"] * LAW["B"])) ** (1 / s)
    rows = []
    for C in np.logspace(16, 19, 4):
        n_opt = G * (C / 6) ** (LAW["beta"] / s)
        for n in n_opt * 10 ** (offset_decades + np.linspace(-width_decades / 2, width_decades / 2, k)):
            d = C / (6 * n)
            rows.append({"n": float(n), "d": float(d), "loss": float(laws.chinchilla(n, d, **LAW))})
    return rows


def test_the_isoflop_sampling_flag_fires_off_centre_and_not_centred():
    off_study = analyse(study(isoflop_rows(1.0, 3.0), noise=0.001))
    off, centred = off_study.groups[0], analyse(study(isoflop_rows(0.0, 1.0), noise=0.003)).groups[0]
    assert off.isoflop_bias["flag"].all() and (off.isoflop_bias["bias_decades"] > 0).all(), off.isoflop_bias
    assert not centred.isoflop_bias["flag"].any(), centred.isoflop_bias
    summary = off_study.summary()
    assert "in 4 the sampled sizes bias the parabola's minimum" in " ".join(summary.findings)
    assert sum("IsoFLOP budget" in u and "above the surface's" in u for u in summary.uncertain) == 4
