"""Held-out coverage of the mean-law and new-run intervals on a study of our own, per law (docs/trust.md).

    .venv/bin/python bench/trust_coverage.py /tmp/h7/runs.db [--study NAME] [--laws chinchilla,kaplan,power_D]

Per variant group: each law refitted on the settings at or below the study's back-test split (the cheapest
~80%), its 95% intervals for the mean law and for one new run checked against the costlier settings' seed
means and single runs (scalinglab.studies.analysis.holdout_coverage). Also prints the law-selection table
and the variant comparison of the study analysis. Prints the load average at start and end.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import pandas as pd


def main() -> None:
    from scalinglab.fit.fitting import fit_law
    from scalinglab.studies.analysis import analyse_study, backtest_split, holdout_coverage, law_of_choice
    from scalinglab.studies.load import load_study

    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("--study")
    ap.add_argument("--laws", default="chinchilla,kaplan", help="compare_laws names besides the chosen one")
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t0 = time.time()
    loaded = load_study(args.db, args.study)
    sa = analyse_study(loaded, n_resamples=args.bootstrap)
    done = loaded.runs[loaded.runs["status"] == "complete"]
    keys = (*sa.setting_keys, *loaded.design.get("tuned_keys", ()))
    rows = []
    for g in sa.groups:
        sel = g.law_selection
        print(f"\n== {sa.study}, {g.label}: law selection ({sel.reason})")
        print(sel.table[["n_params", "n_splits", "mean_rmse_log", "mean_abs_rel_error", "in_sample_rmse_log"]]
              .to_string(float_format=lambda v: f"{v:.3g}"))
        split = backtest_split(g.points["C"])
        for name in dict.fromkeys([sel.chosen, *args.laws.split(",")]):
            law, x = law_of_choice(name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = fit_law(g.points, law, x=x, n_resamples=0, holdout_above=split)
            cov = holdout_coverage(g.points, fit, split, runs=done, run_keys=keys, n_resamples=args.bootstrap)
            rows.append({"group": g.label, "law": name + (" (chosen)" if name == sel.chosen else ""),
                         "held-out settings": cov["n_test"],
                         "mean |error|": f"{100 * fit.backtest['mean_abs_rel_error']:.1f}%",
                         "seed means in mean-law 95%": f"{cov['mean_inside']}/{cov['n_test']}",
                         "single runs in new-run 95%": f"{cov['runs_inside']}/{cov['runs_total']}"})
    print("\n" + pd.DataFrame(rows).to_string(index=False))
    if sa.variants is not None:
        print("\n" + sa.variants.summary())
        print(sa.variants.table.to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"\n{time.time() - t0:.0f} s; load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
