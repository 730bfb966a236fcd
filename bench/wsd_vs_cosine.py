"""WSD with branched cooldowns against per-budget cosine runs: loss gap, IsoFLOP exponent, compute.

    python bench/wsd_vs_cosine.py              # 4 sizes x 5 budgets x 2 seeds each way, ~15 min on 2 busy cores
    python bench/wsd_vs_cosine.py --smoke      # a minute: checks the script, numbers mean nothing

The cosine study trains every size at every budget C with its own cosine
schedule (D = C / exact FLOPs per token). The WSD study replaces those runs
with one constant-LR trunk per size and seed plus a 1-sqrt cooldown over the
last 20% of each budget's steps, branched from the trunk's checkpoint
(:func:`scalinglab.families.lm.wsd.wsd_isoflop_design`, Hägele et al. 2024).
A branch trains exactly the steps of its cosine twin, so both sit at the same
(N, D, C). Reported: per size and budget the WSD loss minus the cosine loss
beside the seed-to-seed spread of each, the IsoFLOP exponent a (N_opt ∝ C^a;
Approach 2 via :func:`scalinglab.fit.isoflop_profiles`, 95% run-level
bootstrap interval) from each study, and the FLOPs each study spent (trunks
counted once). Budgets are sqrt(2) apart, so a trunk serves five budgets.
Writes bench/results/wsd_vs_cosine.json and prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.errors import FitError
from scalinglab.families.lm.model import flops_per_token
from scalinglab.families.lm.train import FAMILY
from scalinglab.families.lm.wsd import run_wsd_sweep, wsd_isoflop_design
from scalinglab.fit import bootstrap_statistic, isoflop_profiles
from scalinglab.store import RunStore
from scalinglab.sweep.engine import run_sweep

FULL = dict(sizes=("d16-l1", "d24-l1", "d32-l1", "d48-l1"), budgets=tuple(3e10 * 2 ** (k / 2) for k in range(1, 6)),
            run={"context": 64, "batch_size": 8, "noise_splits": 2, "vocab_size": 512, "eval_tokens": 8192,
                 "precision": "fp32"})
SMOKE = dict(sizes=("d16-l1", "d24-l1", "d32-l1"), budgets=(2e9, 2.8e9, 4e9),
             run={"context": 32, "batch_size": 8, "noise_splits": 2, "tokenizer": "bytes", "eval_tokens": 1024,
                  "precision": "fp32"})
SEEDS = (0, 1)
COOLDOWN = 0.2


def cosine_design(sizes, budgets, run) -> list[dict]:
    """Every size at every budget, per seed: D = C / (exact training FLOPs per token)."""
    configs = []
    for seed in SEEDS:
        for C in budgets:
            for size in sizes:
                fpt = flops_per_token(FAMILY.config({**run, "size": size, "tokens": 1}).model_config())["train"]
                configs.append({**run, "size": size, "tokens": float(f"{C / fpt:.6g}"), "seed": seed})
    return configs


def frame(runs: pd.DataFrame, budgets) -> pd.DataFrame:
    """One row per scored run (trunks left out): N, D, C (the model's whole training), loss, budget."""
    rows = []
    for _, r in runs.iterrows():
        m = r["metrics"]
        rows.append({"size": r["size"], "seed": int(r["seed"]), "N": float(r["params"]), "D": float(r["examples"]),
                     "C": float(m["model_flops"]), "own_flops": float(r["flops"]), "loss": float(r["val_loss"]),
                     "role": m["role"], "wall_s": float(r["wall_s"] or 0.0)})
    df = pd.DataFrame(rows)
    lb = np.log(np.asarray(budgets))
    df["budget"] = np.asarray(budgets)[np.abs(np.log(df["C"].to_numpy())[:, None] - lb[None]).argmin(1)]
    return df


def exponent(df: pd.DataFrame) -> dict:
    scored = df[df["role"] != "trunk"].reset_index(drop=True)
    try:
        iso = isoflop_profiles(scored, budget="budget")
    except FitError as exc:
        return {"a": math.nan, "a_se": math.nan, "ci": [math.nan, math.nan], "n_budgets": 0, "warnings": [str(exc)]}
    boot = bootstrap_statistic(lambda r: {"a": isoflop_profiles(r, budget="budget").a}, scored,
                               n_resamples=200, cluster=None)
    prof = iso.profiles
    return {"a": iso.a, "a_se": iso.a_se, "ci": list(boot.ci["a"]), "n_budgets": iso.n_used,
            "n_failed_resamples": boot.n_failed, "warnings": iso.warnings,
            "N_opt": {f"{c:.3g}": float(n) for c, n in zip(prof["C"], prof["N_opt"])}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and budgets: check the script runs")
    ap.add_argument("--db", help="run database (kept, so a killed benchmark resumes); default: a temp folder")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "wsd_vs_cosine.json"))
    args = ap.parse_args()
    spec = SMOKE if args.smoke else FULL
    load_before = os.getloadavg()
    db = Path(args.db) if args.db else Path(tempfile.mkdtemp(prefix="wsd-bench-")) / "runs.db"
    cosine = cosine_design(spec["sizes"], spec["budgets"], spec["run"])
    design = wsd_isoflop_design(cosine, cooldown=COOLDOWN, shape="1-sqrt")
    walls = {}
    with RunStore(db) as store:
        t = time.perf_counter()
        run_sweep(store, "bench-cosine", FAMILY.name, cosine, workers=args.workers, progress=False)
        walls["cosine"] = time.perf_counter() - t
        t = time.perf_counter()
        run_wsd_sweep(store, "bench-wsd", design, workers=args.workers, progress=False)
        walls["wsd"] = time.perf_counter() - t
        cos = frame(store.runs(study="bench-cosine", status="complete"), spec["budgets"])
        wsd = frame(store.runs(study="bench-wsd", status="complete"), spec["budgets"])
    load_after = os.getloadavg()

    keys = ["size", "budget", "seed"]
    pair = cos[keys + ["loss"]].merge(wsd[wsd["role"] == "branch"][keys + ["loss"]], on=keys,
                                      suffixes=("_cosine", "_wsd"))
    pair["gap"] = pair["loss_wsd"] - pair["loss_cosine"]
    table = pair.groupby(["size", "budget"], sort=True).agg(
        cosine=("loss_cosine", "mean"), wsd=("loss_wsd", "mean"), gap=("gap", "mean"),
        cosine_seed_spread=("loss_cosine", lambda v: float(np.ptp(v))),
        wsd_seed_spread=("loss_wsd", lambda v: float(np.ptp(v)))).reset_index()
    flops = {"cosine": float(cos["own_flops"].sum()), "wsd": float(wsd["own_flops"].sum()),
             "wsd_trunks": float(wsd.loc[wsd["role"] == "trunk", "own_flops"].sum()),
             "wsd_cooldowns": float(wsd.loc[wsd["role"] == "branch", "own_flops"].sum())}
    result = {
        "sizes": spec["sizes"], "budgets": spec["budgets"], "seeds": SEEDS, "run": spec["run"],
        "cooldown": COOLDOWN, "shape": "1-sqrt", "load_average_before": load_before,
        "load_average_after": load_after, "wall_s": walls, "flops": flops,
        "flops_ratio_wsd_over_cosine": flops["wsd"] / flops["cosine"],
        "runs": {"cosine": int(len(cos)), "wsd_trunks": int((wsd["role"] == "trunk").sum()),
                 "wsd_branches": int((wsd["role"] == "branch").sum())},
        "gap_mean": float(pair["gap"].mean()), "gap_abs_max": float(pair["gap"].abs().max()),
        "seed_spread_mean": float(np.mean([table["cosine_seed_spread"].mean(), table["wsd_seed_spread"].mean()])),
        "table": json.loads(table.to_json(orient="records")),
        "exponent": {"cosine": exponent(cos), "wsd": exponent(wsd)},
    }
    out = Path(args.out if not args.smoke else Path(tempfile.gettempdir()) / "wsd_vs_cosine_smoke.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))

    print(f"load average (1, 5, 15 min): before {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f}, "
          f"after {load_after[0]:.1f} {load_after[1]:.1f} {load_after[2]:.1f} (2 cores)")
    print(f"wall: cosine study {walls['cosine']:.0f} s, WSD study {walls['wsd']:.0f} s\n")
    print("| size | budget C | cosine loss | WSD loss | gap (WSD - cosine) | seed spread cosine / WSD |")
    print("|---|---|---|---|---|---|")
    for r in table.itertuples():
        print(f"| {r.size} | {r.budget:.3g} | {r.cosine:.4f} | {r.wsd:.4f} | {r.gap:+.4f} | "
              f"{r.cosine_seed_spread:.4f} / {r.wsd_seed_spread:.4f} |")
    print(f"\nmean gap {result['gap_mean']:+.4f} nats (largest |gap| {result['gap_abs_max']:.4f}); "
          f"mean seed spread {result['seed_spread_mean']:.4f}")
    for way in ("cosine", "wsd"):
        e = result["exponent"][way]
        print(f"IsoFLOP exponent a ({way}): {e['a']:.3f} ± {e['a_se']:.3f} (regression), "
              f"95% bootstrap [{e['ci'][0]:.3f}, {e['ci'][1]:.3f}], {e['n_budgets']} budgets"
              + "".join(f"\n  note: {w}" for w in e["warnings"]))
    print(f"FLOPs: cosine {flops['cosine']:.3e}, WSD {flops['wsd']:.3e} (trunks {flops['wsd_trunks']:.3e} + "
          f"cooldowns {flops['wsd_cooldowns']:.3e}) = {100 * result['flops_ratio_wsd_over_cosine']:.1f}% of cosine")
    print(f"results: {out}; runs: {db}")


if __name__ == "__main__":
    main()
