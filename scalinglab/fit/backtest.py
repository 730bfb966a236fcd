"""Back-testing: fit on the cheap runs, predict the expensive ones.

A scaling law earns trust by extrapolating. ``backtest`` fits a law on every
run at or below a compute threshold and predicts each run above it; the
frontier law is scored on the frontier runs above the threshold (the best
loss reached at each compute level, which is what it predicts).
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
    threshold: float            # FLOPs: fitted on C <= threshold, predicted above
    estimator: _LawFit          # the law fitted on the training runs

    def to_dict(self) -> dict[str, Any]:
        return {"holdout_above": self.threshold, "summary": self.summary,
                "fit": self.estimator.to_dict(),
                "predictions": self.predictions.replace({np.nan: None}).to_dict(orient="records")}


def backtest(estimator: _LawFit, runs: pd.DataFrame, *, holdout_above: float) -> BacktestResult:
    """Fit a fresh copy of ``estimator`` on runs with C <= ``holdout_above`` and score it on the rest."""
    if "C" not in runs.columns:
        raise FitError("a back-test splits runs by training FLOPs: the table needs C (or N and D)")
    c = runs["C"].to_numpy(float)
    train, test = runs[c <= holdout_above], runs[c > holdout_above]
    if len(test) == 0:
        raise FitError(f"no runs above {holdout_above:.3g} FLOPs to predict (largest is {c.max():.3g}); "
                       "lower --holdout-above")
    if len(train) == 0:
        raise FitError(f"no runs at or below {holdout_above:.3g} FLOPs to fit (smallest is {c.min():.3g}); "
                       "raise --holdout-above")
    model = type(estimator)(**estimator.get_params())
    model.fit(train.reset_index(drop=True))
    if isinstance(model, FrontierFit):
        front = compute_frontier(runs)
        test = front[front["C"].to_numpy(float) > holdout_above]
        if len(test) == 0:
            raise FitError(f"no run above {holdout_above:.3g} FLOPs improves on the frontier below it, so the "
                           "frontier law has nothing to predict there; lower --holdout-above")
    pred = model.predict(test)
    measured = test["loss"].to_numpy(float)
    rel = (pred - measured) / measured
    table = pd.DataFrame({"run": test["run"].to_numpy() if "run" in test else test.index.astype(str),
                          "C": test["C"].to_numpy(float),
                          "N": test["N"].to_numpy(float) if "N" in test else np.nan,
                          "D": test["D"].to_numpy(float) if "D" in test else np.nan,
                          "measured": measured, "predicted": pred, "rel_error": rel})
    table = table.sort_values("C").reset_index(drop=True)
    log_err = np.log(pred) - np.log(measured)
    summary = {"n_train": int(len(train)), "n_test": int(len(test)),
               "mean_abs_rel_error": float(np.mean(np.abs(rel))),
               "median_abs_rel_error": float(np.median(np.abs(rel))),
               "max_abs_rel_error": float(np.max(np.abs(rel))),
               "mean_rel_error": float(np.mean(rel)),
               "rmse_log": float(np.sqrt(np.mean(log_err ** 2)))}
    return BacktestResult(predictions=table, summary=summary, threshold=float(holdout_above), estimator=model)
