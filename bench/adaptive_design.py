"""Adaptive design vs a fixed grid: FLOPs to reach the same interval width on a, and coverage of the truth.

Part 1 (synthetic, known truth): the Chinchilla law of Hoffmann et al. 2022
(E 1.69, A 406.4, B 410.7, alpha 0.34, beta 0.28; a = 0.4516) with 1%
log-normal noise per run. The fixed grid is shaped like the quick MNIST grid:
9 sizes x 7 data sizes (halvings) x 2 seeds, cost 6ND. The adaptive design
starts from its 3 x 3 corner-and-centre subset (one seed) and adds
``--per-round`` runs per round chosen by ``plan_runs`` among the same 63
settings (seeds 0 and 1), until its interval on a is as narrow as the fixed
grid's or it has spent the grid's FLOPs. Repeated over ``--reps`` noise
seeds; coverage = share of 95% intervals that contain the true a.

Part 2 (``--mnist DB``): the same comparison on the real MNIST quick grid,
replayed from a database holding its 126 finished runs: a run the adaptive
study asks for is looked up there (its recorded outcome) instead of trained
again, and costs what ``FAMILY.cost`` says. The database is only read.

    .venv/bin/python bench/adaptive_design.py --reps 40 [--mnist /tmp/h7/runs.db]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scalinglab.studies.plan import current_fit, plan_from_fit  # noqa: E402

TRUTH = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
A_TRUE = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])
SIGMA = 0.01
N_GRID = np.geomspace(1e7, 1e9, 9)
D_GRID = 6.4e10 / 2.0 ** np.arange(7)
SEEDS = (0, 1)
FIT = {"n_resamples": 100, "fit_options": {"starts": "coarse"}}
TARGET_FLOPS = 1e21


def law(n, d):
    return TRUTH["E"] + TRUTH["A"] * n ** -TRUTH["alpha"] + TRUTH["B"] * d ** -TRUTH["beta"]


def outcome(rep: int, i: int, j: int, seed: int) -> float:
    """The loss run (N_GRID[i], D_GRID[j], seed) reports in replicate ``rep`` (fixed by those four numbers)."""
    eps = np.random.default_rng([rep, i, j, seed]).standard_normal()
    return float(law(N_GRID[i], D_GRID[j]) * np.exp(SIGMA * eps))


def runs_frame(rep: int, settings) -> pd.DataFrame:
    return pd.DataFrame([{"N": N_GRID[i], "D": D_GRID[j], "seed": s, "loss": outcome(rep, i, j, s)}
                         for i, j, s in settings])


def a_interval(frame: pd.DataFrame):
    fit = current_fit(frame, question="a", law="chinchilla", target_flops=TARGET_FLOPS, **FIT)
    iv = fit.intervals["a"]
    return fit, iv.lo, iv.hi


def synthetic(reps: int, per_round: int) -> dict:
    full = [(i, j, s) for i in range(9) for j in range(7) for s in SEEDS]
    grid_flops = sum(6 * N_GRID[i] * D_GRID[j] for i, j, _ in full)
    seed_design = [(i, j, 0) for i in (0, 4, 8) for j in (0, 3, 6)]
    cand = pd.DataFrame([{"N": N_GRID[i], "D": D_GRID[j], "cost_flops": 6 * N_GRID[i] * D_GRID[j], "ij": (i, j)}
                         for i in range(9) for j in range(7)])
    index = {(float(f"{N_GRID[i]:.9g}"), float(f"{D_GRID[j]:.9g}")): (i, j) for i in range(9) for j in range(7)}
    rows = []
    for rep in range(reps):
        t0 = time.perf_counter()
        ffit, flo, fhi = a_interval(runs_frame(rep, full))
        fixed_width = fhi - flo
        settings = list(seed_design)
        spent = sum(6 * N_GRID[i] * D_GRID[j] for i, j, _ in settings)
        reached, rounds = None, 0
        while True:
            frame = runs_frame(rep, settings)
            fit, lo, hi = a_interval(frame)
            if hi - lo <= fixed_width:
                reached = spent
                break
            if grid_flops - spent < cand["cost_flops"].min():
                break
            plan = plan_from_fit(fit, frame, question="a", target_flops=TARGET_FLOPS,
                                 budget_flops=grid_flops - spent, candidates=cand.drop(columns="ij"),
                                 seeds=SEEDS, max_runs=per_round)
            if not len(plan.table):
                break
            for n, d, s, c in zip(plan.table.N, plan.table.D, plan.table.seed, plan.table.cost_flops):
                i, j = index[(float(f"{n:.9g}"), float(f"{d:.9g}"))]
                settings.append((i, j, int(s)))
                spent += c
            rounds += 1
        rows.append({"rep": rep, "fixed_width": fixed_width, "fixed_covers": flo <= A_TRUE <= fhi,
                     "fixed_a": ffit.value("a"), "adaptive_flops": spent, "reached": reached is not None,
                     "adaptive_width": hi - lo, "adaptive_covers": lo <= A_TRUE <= hi, "adaptive_a": fit.value("a"),
                     "rounds": rounds, "runs": len(settings), "s": time.perf_counter() - t0})
        r = rows[-1]
        print(f"rep {rep}: fixed width {fixed_width:.4f} covers {r['fixed_covers']}; adaptive {r['runs']} runs, "
              f"{spent / grid_flops:.3f} of the grid's FLOPs, width {hi - lo:.4f} covers {r['adaptive_covers']}"
              f"{'' if r['reached'] else ' (did not reach the width)'} [{r['s']:.0f} s]", flush=True)
    df = pd.DataFrame(rows)
    ratio = df["adaptive_flops"] / grid_flops
    return {"reps": reps, "grid_flops": grid_flops, "grid_runs": len(full), "seed_runs": len(seed_design),
            "per_round": per_round, "reached": int(df["reached"].sum()),
            "flops_ratio_median": float(ratio[df["reached"]].median()) if df["reached"].any() else None,
            "flops_ratio_q90": float(ratio[df["reached"]].quantile(0.9)) if df["reached"].any() else None,
            "runs_median": float(df["runs"].median()),
            "coverage_fixed": float(df["fixed_covers"].mean()), "coverage_adaptive": float(df["adaptive_covers"].mean()),
            "width_fixed_median": float(df["fixed_width"].median()),
            "width_adaptive_median": float(df["adaptive_width"].median()), "rows": df.to_dict(orient="records")}


class Replay:
    """The MNIST family whose runs are read from a database of finished runs instead of trained."""

    name = "mnist_cnn"

    def __init__(self, source: str):
        from scalinglab.store import RunStore

        with RunStore(source, readonly=True) as store:
            runs = store.runs(status="complete")
        self.results = {k: r for k, r in zip(runs["key"], runs.to_dict(orient="records"))}

    def cost(self, config):
        from scalinglab.families.mnist.train import FAMILY

        return FAMILY.cost(config)

    def data_key(self, config):
        return None

    def load_data(self, config):
        return None

    def train(self, config, data):
        from scalinglab.store import run_key
        from scalinglab.sweep.family import RunResult

        r = self.results.get(run_key(self.name, config))
        if r is None:
            raise RuntimeError(f"no recorded run for {config}")
        return RunResult(params=int(r["params"]), flops=float(r["flops"]), examples=int(r["examples"]),
                         val_loss=float(r["val_loss"]), val_acc=r["val_acc"])


def mnist(source: str, per_round: int) -> dict:
    from scalinglab.families.mnist.train import FAMILY
    from scalinglab.studies.adaptive import mnist_candidates, mnist_seed_design, run_adaptive_study, study_frame
    from scalinglab.studies.load import resolve_study

    name, _ = resolve_study(source, None, "mnist_cnn")
    quick = study_frame(source, name)
    configs = _configs(source, name)
    grid_flops = float(sum(FAMILY.cost(c) for c in configs))
    qfit, qlo, qhi = a_interval(quick)
    tmp = Path(tempfile.mkdtemp(prefix="adaptive-bench-"))
    try:
        fam = Replay(source)
        history = []
        result = run_adaptive_study(fam, mnist_seed_design(), mnist_candidates(), db=str(tmp / "runs.db"),
                                    name="adaptive", question="a", target_flops=TARGET_FLOPS,
                                    budget_flops=grid_flops, target_width=qhi - qlo, runs_per_round=per_round,
                                    max_rounds=40, seeds=(0, 1), workers=0, progress=False, on_round=history.append,
                                    **FIT)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"study": name, "grid_runs": len(configs), "grid_flops": grid_flops, "fixed_a": qfit.value("a"),
            "fixed_interval": [qlo, qhi], "fixed_width": qhi - qlo,
            "adaptive_a": result.fit.value("a"), "adaptive_interval": [result.rounds[-1]["lo"], result.rounds[-1]["hi"]],
            "adaptive_width": result.rounds[-1]["width"], "adaptive_flops": result.spent_flops,
            "adaptive_runs": sum(len(r["runs"]) for r in result.rounds), "stopped": result.stopped,
            "rounds": [{k: r[k] for k in ("round", "spent_flops", "width", "lo", "hi")} for r in result.rounds]}


def _configs(db: str, name: str) -> list[dict]:
    from scalinglab.store import RunStore

    with RunStore(db, readonly=True) as store:
        rows = store.conn.execute("SELECT config FROM runs JOIN study_runs USING (key) WHERE study = ?",
                                  (name,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--per-round", type=int, default=4)
    ap.add_argument("--mnist", help="database with the finished quick MNIST grid (replayed, read only)")
    ap.add_argument("--out", default="bench/results/adaptive_design.json")
    args = ap.parse_args()
    load0 = os.getloadavg()
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} on {os.cpu_count()} CPUs "
          "(the machine is shared and busy: timings are not the point here, FLOPs are)")
    out = {"load_average_start": load0[0], "synthetic": synthetic(args.reps, args.per_round)}
    s = out["synthetic"]
    print(f"synthetic: fixed grid {s['grid_runs']} runs; adaptive reached the grid's width in {s['reached']} of "
          f"{s['reps']} reps with a median {s['flops_ratio_median']} (90th pct {s['flops_ratio_q90']}) of its FLOPs; "
          f"coverage of the true a: fixed {s['coverage_fixed']:.3f}, adaptive {s['coverage_adaptive']:.3f}")
    if args.mnist:
        out["mnist"] = m = mnist(args.mnist, args.per_round)
        print(f"mnist: fixed quick grid a = {m['fixed_a']:.3f} {m['fixed_interval']} width {m['fixed_width']:.3f} "
              f"for {m['grid_flops']:.3g} FLOPs; adaptive a = {m['adaptive_a']:.3f} {m['adaptive_interval']} width "
              f"{m['adaptive_width']:.3f} for {m['adaptive_flops']:.3g} FLOPs "
              f"({m['adaptive_flops'] / m['grid_flops']:.3f} of the grid, {m['adaptive_runs']} runs); {m['stopped']}")
    out["load_average_end"] = os.getloadavg()[0]
    print(f"load average at end: {out['load_average_end']:.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
