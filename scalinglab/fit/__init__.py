"""Fitting scaling laws to runs: the three approaches of Hoffmann et al. 2022 and more.

    from scalinglab.fit import load_runs, ChinchillaFit, bootstrap
    runs = load_runs("runs.csv")                 # columns N, D, C, loss (+ run, seed)
    fit = ChinchillaFit().fit(runs)              # Approach 3, 4,500-start Huber fit
    boot = bootstrap(fit, runs, n_resamples=1000, at_flops=[1e24])
    boot.summary()                               # estimate, se, 95% interval per quantity

See docs/fitting.md for the laws, the fitting recipe and the published laws.
"""

from scalinglab.fit.allocate import (
    PUBLISHED_LAWS,
    Allocation,
    AllocationRule,
    ChinchillaLaw,
    InferenceAllocation,
    KaplanLaw,
    compute_optimal,
    inference_optimal,
    law_from_dict,
    load_law,
)
from scalinglab.fit.backtest import BacktestResult, backtest
from scalinglab.fit.bootstrap import BootstrapResult, bootstrap, bootstrap_statistic, resample_counts
from scalinglab.fit.frontier import Approach1Result, FrontierFit, approach1, compute_frontier, fit_frontier
from scalinglab.fit.isoflop import IsoFlopResult, group_budgets, isoflop_profiles
from scalinglab.fit.parametric import (
    COARSE_GRID,
    HOFFMANN_GRID,
    ChinchillaFit,
    ConvergenceWarning,
    KaplanFit,
    PowerLawFit,
    fit_chinchilla,
    fit_kaplan,
    fit_power_law,
)
from scalinglab.fit.table import drop_highest_loss, load_runs, read_store_runs, read_table

__all__ = [
    "PUBLISHED_LAWS", "Allocation", "AllocationRule", "Approach1Result", "BacktestResult", "BootstrapResult",
    "COARSE_GRID", "ChinchillaFit", "ChinchillaLaw", "ConvergenceWarning", "FrontierFit", "HOFFMANN_GRID",
    "InferenceAllocation", "IsoFlopResult", "KaplanFit", "KaplanLaw", "PowerLawFit", "approach1", "backtest",
    "bootstrap", "bootstrap_statistic", "compute_frontier", "compute_optimal", "drop_highest_loss",
    "fit_chinchilla", "fit_frontier", "fit_kaplan", "fit_power_law", "group_budgets", "inference_optimal",
    "isoflop_profiles", "law_from_dict", "load_law", "load_runs", "read_store_runs", "read_table",
    "resample_counts",
]
