"""Fitting scaling laws to runs: the three approaches of Hoffmann et al. 2022 and more.

    from scalinglab.fit import fit_law, fit_groups
    res = fit_law("runs.csv", "chinchilla", n_resamples=1000, at_flops=[1e24])   # a FitResult
    res.params, res.derived["a"], res.intervals["N_opt@1e+24"], res.warnings
    res.summary()                                # estimate, se, interval and its method per quantity
    fits = fit_groups("runs.csv", "isoflop", group_by="dataset", isoflop_method="akima")

The estimators behind it (ChinchillaFit, bootstrap, isoflop_profiles, ...) are exported too.

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
from scalinglab.fit.backtest import BacktestResult, backtest, error_summary
from scalinglab.fit.bootstrap import BootstrapResult, bootstrap, bootstrap_statistic, resample_counts
from scalinglab.fit.fitting import LAWS, Law, check_table, compare_variants, fit_groups, fit_law, register_law
from scalinglab.fit.frontier import Approach1Result, FrontierFit, approach1, compute_frontier, fit_frontier
from scalinglab.fit.isoflop import IsoFlopResult, budget_of_runs, group_budgets, isoflop_profiles
from scalinglab.fit.parametric import (
    COARSE_GRID,
    HOFFMANN_GRID,
    ChinchillaFit,
    ConvergenceWarning,
    KaplanFit,
    BrokenPowerLawFit,
    PowerLawFit,
    fit_chinchilla,
    fit_kaplan,
    fit_power_law,
)
from scalinglab.fit.data_constrained import DataConstrainedFit, fit_data_constrained
from scalinglab.fit.noise import NoiseModel, noise_model, prediction_intervals
from scalinglab.fit.result import FitResult, Interval
from scalinglab.fit.select import compare_laws, isoflop_bias
from scalinglab.fit.variants import VariantComparison, fit_variants
from scalinglab.fit.varpro import fit_varpro
from scalinglab.fit.table import drop_highest_loss, load_runs, load_runs_selection, read_store_runs, read_table

__all__ = [
    "LAWS", "FitResult", "Interval", "Law", "budget_of_runs", "check_table", "compare_variants", "error_summary",
    "fit_groups",
    "fit_law", "load_runs_selection", "register_law",
    "PUBLISHED_LAWS", "Allocation", "AllocationRule", "Approach1Result", "BacktestResult", "BootstrapResult",
    "COARSE_GRID", "ChinchillaFit", "ChinchillaLaw", "ConvergenceWarning", "FrontierFit", "HOFFMANN_GRID",
    "InferenceAllocation", "IsoFlopResult", "KaplanFit", "KaplanLaw", "PowerLawFit", "approach1", "backtest",
    "bootstrap", "bootstrap_statistic", "compute_frontier", "compute_optimal", "drop_highest_loss",
    "fit_chinchilla", "fit_frontier", "fit_kaplan", "fit_power_law", "group_budgets", "inference_optimal",
    "isoflop_profiles", "law_from_dict", "load_law", "load_runs", "read_store_runs", "read_table",
    "resample_counts", "BrokenPowerLawFit", "DataConstrainedFit", "NoiseModel", "VariantComparison", "compare_laws",
    "fit_data_constrained", "fit_variants", "fit_varpro", "isoflop_bias", "noise_model", "prediction_intervals",
]
