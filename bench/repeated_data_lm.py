"""Repeated data in our own LM runs: the data-constrained law against Chinchilla's, fitted and back-tested.

    python bench/repeated_data_lm.py           # 27 runs, ~12 min on 2 busy cores

A grid of 3 sizes x 3 token budgets D x 3 unique-data sizes U (the first U
tokens of the Shakespeare training stream, ``max_unique_tokens``; one
validation set for all), so the runs see 0.4 to 32 epochs. Fitted to all
runs and back-tested (fit on D <= 2.56e5 tokens, predict the 1.02M-token
runs): Chinchilla's L(N, D) (Hoffmann et al. 2022) and the data-constrained
L(N, D, U) (Muennighoff et al. 2023), N = total parameters, U = the unique
tokens each run recorded. Writes bench/results/repeated_data_lm.json and
prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.families.lm.train import FAMILY
from scalinglab.fit.backtest import backtest
from scalinglab.fit.data_constrained import DataConstrainedFit
from scalinglab.fit.parametric import ChinchillaFit
from scalinglab.store import RunStore
from scalinglab.sweep.engine import run_sweep

SIZES = ("d16-l1", "d32-l1", "d48-l1")
TOKENS = (6.4e4, 2.56e5, 1.024e6)
UNIQUE = (3.2e4, 1.28e5, None)  # None: the whole stream (2.4M tokens, under one epoch here)
RUN = {"context": 64, "batch_size": 8, "noise_splits": 2, "vocab_size": 512, "eval_tokens": 8192,
       "precision": "fp32", "second_eval": ""}
HOLDOUT_ABOVE = 3e5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="run database (kept, so a killed benchmark resumes); default: a temp folder")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "repeated_data_lm.json"))
    args = ap.parse_args()
    load_before = os.getloadavg()
    db = Path(args.db) if args.db else Path(tempfile.mkdtemp(prefix="repeat-bench-")) / "runs.db"
    configs = [{**RUN, "size": s, "tokens": d, **({"max_unique_tokens": int(u)} if u else {})}
               for s in SIZES for d in TOKENS for u in UNIQUE]
    t = time.perf_counter()
    with RunStore(db) as store:
        run_sweep(store, "repeated-data", FAMILY.name, configs, workers=args.workers, progress=False)
        runs = store.runs(study="repeated-data", status="complete")
    wall = time.perf_counter() - t
    frame = pd.DataFrame({"size": runs["size"], "N": runs["params"].astype(float), "D": runs["examples"].astype(float),
                          "U": [float(m["unique_tokens"]) for m in runs["metrics"]],
                          "epochs": [float(m["epochs"]) for m in runs["metrics"]],
                          "loss": runs["val_loss"].astype(float)})
    frame["C"] = [float(m["model_flops"]) for m in runs["metrics"]]
    out = {"load_average_before": load_before, "load_average_after": os.getloadavg(), "wall_s": wall,
           "runs": json.loads(frame.to_json(orient="records")), "holdout_above_D": HOLDOUT_ABOVE}
    lines = ["| law | fit to all runs: log-loss RMS | back-test: mean abs rel. error | worst | fitted parameters |",
             "|---|---|---|---|---|"]
    for name, est in (("chinchilla", ChinchillaFit()), ("data-constrained", DataConstrainedFit())):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = type(est)(**est.get_params()).fit(frame)
            bt = backtest(est, frame, holdout_above=HOLDOUT_ABOVE, axis="D")
        rms = float(np.sqrt(np.mean(np.log(fit.predict(frame) / frame["loss"]) ** 2)))
        out[name] = {"params": fit.params_, "rms_log": rms, "backtest": bt.summary,
                     "backtest_params": dict(bt.estimator.params_), "warnings": sorted({str(w.message) for w in caught})}
        params = ", ".join(f"{k} = {v:.3g}" for k, v in fit.params_.items())
        lines.append(f"| {name} | {rms:.4f} | {100 * bt.summary['mean_abs_rel_error']:.2f}% | "
                     f"{100 * bt.summary['max_abs_rel_error']:.2f}% | {params} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print(f"load average before {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f}, after "
          f"{out['load_average_after'][0]:.1f} (2 cores); {len(frame)} runs in {wall:.0f} s\n")
    print(frame.pivot_table(index=["size", "D"], columns="U", values="loss").round(4).to_string(), "\n")
    print("\n".join(lines))
    print(f"\nresults: {args.out}; runs: {db}")


if __name__ == "__main__":
    main()
