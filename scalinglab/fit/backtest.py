"""Back-testing: fit on the small runs, predict the large ones.

A scaling law earns trust by extrapolating. ``backtest`` fits a law on every
run at or below a threshold along one axis (C by default, or N, D or any
column, e.g. the examples seen of a learning curve) and predicts each run
above it; the frontier law is scored on the frontier runs above the
threshold (the best loss reached at each compute level, which is what it
predicts). ``error_summary`` scores any predictions the same way, so the
IsoFLOP and Approach 1 back-tests of :mod:`scalinglab.fit.fitting` report
the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import FitError
from scalinglab.fit.frontier import FrontierFit, compute_frontier
from scalinglab.fit.parametric import _LawFit


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Per-run predictions above the threshold and a summary of their errors."""

    predictions: pd.DataFrame   # run, C, N, D, measured, predicted, rel_error
    summary: dict[str, float]   # n_train, n_test, mean/median/max |rel error|, mean rel error, rmse of log
    threshold: float            # fitted on axis <= threshold, predicted above
    estimator: _LawFit          # the law fitted on the training runs
    axis: str = "C"

    def to_dict(self) -> dict[str, Any]:
        return {"holdout_above": self.threshold, "axis": self.axis, "summary": self.summary,
                "fit": self.estimator.to_dict(),
                "predictions": self.predictions.replace({np.nan: None}).to_dict(orient="records")}


def error_summary(measured: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Mean, median and max |relative error|, mean signed relative error and RMS log error."""
    measured, predicted = np.asarray(measured, float), np.asarray(predicted, float)
    rel = (predicted - measured) / measured
    log_err = np.log(predicted) - np.log(measured)
    return {"mean_abs_rel_error": float(np.mean(np.abs(rel))),
            "median_abs_rel_error": float(np.median(np.abs(rel))),
            "max_abs_rel_error": float(np.max(np.abs(rel))),
            "mean_rel_error": float(np.mean(rel)),
            "rmse_log": float(np.sqrt(np.mean(log_err ** 2)))}


def split_runs(runs: pd.DataFrame, holdout_above: float, axis: str = "C") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs with axis <= threshold, runs above it), refusing an empty side with what to change."""
    if axis not in runs.columns:
        raise FitError(f"a back-test along {axis!r} needs that column; columns are: "
                       + ", ".join(map(str, runs.columns)))
    if not np.isfinite(holdout_above):
        raise FitError(f"--holdout-above must be a finite number, got {holdout_above}")
    v = runs[axis].to_numpy(float)
    train, test = runs[v <= holdout_above], runs[v > holdout_above]
    if len(test) == 0:
        raise FitError(f"no runs above {holdout_above:.4g} ({axis}) to predict (largest is {v.max():.4g}); "
                       "lower --holdout-above")
    if len(train) == 0:
        raise FitError(f"no runs at or below {holdout_above:.4g} ({axis}) to fit (smallest is {v.min():.4g}); "
                       "raise --holdout-above")
    return train.reset_index(drop=True), test.reset_index(drop=True)


def backtest(estimator: _LawFit, runs: pd.DataFrame, *, holdout_above: float, axis: str = "C") -> BacktestResult:
    """Fit a fresh copy of ``estimator`` on runs with ``axis`` <= ``holdout_above`` and score it on the rest."""
    if axis == "C" and "C" not in runs.columns:
        raise FitError("a back-test splits runs by training FLOPs: the table needs C (or N and D)")
    if isinstance(estimator, FrontierFit) and axis != "C":
        raise FitError(f"the frontier law predicts loss against compute: back-test it along C, not {axis!r}")
    train, test = split_runs(runs, holdout_above, axis)
    model = type(estimator)(**estimator.get_params())
    model.fit(train)
    if isinstance(model, FrontierFit):
        front = compute_frontier(runs)
        test = front[front["C"].to_numpy(float) > holdout_above]
        if len(test) == 0:
            raise FitError(f"no run above {holdout_above:.3g} FLOPs improves on the frontier below it, so the "
                           "frontier law has nothing to predict there; lower --holdout-above")
    pred = model.predict(test)
    measured = test["loss"].to_numpy(float)
    table = pd.DataFrame({"run": test["run"].to_numpy() if "run" in test else test.index.astype(str),
                          "C": test["C"].to_numpy(float) if "C" in test else np.nan,
                          "N": test["N"].to_numpy(float) if "N" in test else np.nan,
                          "D": test["D"].to_numpy(float) if "D" in test else np.nan,
                          "measured": measured, "predicted": pred, "rel_error": (pred - measured) / measured})
    if axis not in table.columns:
        table.insert(1, axis, test[axis].to_numpy(float))
    table = table.sort_values(axis).reset_index(drop=True)
    summary = {"n_train": int(len(train)), "n_test": int(len(test)), **error_summary(measured, pred)}
    return BacktestResult(predictions=table, summary=summary, threshold=float(holdout_above), estimator=model,
                          axis=axis)
