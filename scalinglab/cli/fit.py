"""``scalinglab fit`` and ``scalinglab allocate``: argument parsing and printing only."""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.errors import DataError, FitError

LAWS = ("chinchilla", "kaplan", "power", "frontier", "isoflop")
_FORMULA = {
    "chinchilla": "L(N, D) = E + A/N^alpha + B/D^beta",
    "kaplan": "L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
    "power": "L(x) = E + A x^-alpha",
    "frontier": "L(C) = E + A C^-alpha on the compute-efficient frontier",
}
_REQUIRE = {"chinchilla": ("N", "D", "loss"), "kaplan": ("N", "D", "loss"), "frontier": ("C", "loss"),
            "isoflop": ("N", "C", "loss")}


def register(sub, study_sub) -> None:
    from scalinglab.fit.allocate import PUBLISHED_LAWS

    p = sub.add_parser(
        "fit", help="fit a scaling law to a table of runs",
        description="Fit a scaling law to runs in a CSV, Parquet or scalinglab SQLite file. Columns are found "
                    "by name (N: params/'Model Size', D: tokens/examples, C: flops/'Training FLOP', loss: "
                    "loss/val_loss) or given with --n/--d/--c/--loss; D = C/(6N) or C = 6ND fills a missing one.")
    p.add_argument("file", help="runs table: .csv, .parquet or .db (scalinglab run store)")
    p.add_argument("--law", choices=LAWS, default="chinchilla",
                   help="chinchilla (Approach 3), kaplan, power (one variable, see --x), frontier (loss vs "
                        "compute frontier + Approach 1), isoflop (Approach 2); default chinchilla")
    cols = p.add_argument_group("column mapping")
    cols.add_argument("--n", metavar="COLUMN", help="column with parameter counts N")
    cols.add_argument("--d", metavar="COLUMN", help="column with training tokens/examples D")
    cols.add_argument("--c", metavar="COLUMN", help="column with training FLOPs C")
    cols.add_argument("--loss", metavar="COLUMN", help="column with the final loss")
    cols.add_argument("--x", metavar="COLUMN", default=None,
                      help="input of a --law power fit: N, D, C or any column (default C)")
    cols.add_argument("--seed", metavar="COLUMN", dest="seed_column",
                      help="column whose values the bootstrap resamples as blocks (default: 'seed' if present; "
                           "'none' resamples single runs)")
    cols.add_argument("--budget", metavar="COLUMN", help="isoflop: column with each run's nominal FLOP budget")
    p.add_argument("--drop-highest-loss", type=int, default=0, metavar="K",
                   help="drop the K runs with the highest loss first (Besiroglu et al. 2024 drop 5)")
    p.add_argument("--bootstrap", type=int, default=200, metavar="K",
                   help="bootstrap resamples for standard errors and intervals (default 200; 0 skips)")
    p.add_argument("--level", type=float, default=0.95, help="interval coverage (default 0.95)")
    p.add_argument("--random-state", type=int, default=0, help="bootstrap random seed (default 0)")
    p.add_argument("--jobs", type=int, default=1, help="processes for the bootstrap (default 1)")
    p.add_argument("--grid", choices=("hoffmann", "coarse"), default="hoffmann",
                   help="chinchilla start grid: hoffmann (4,500 starts, default) or coarse (243)")
    p.add_argument("--at-flops", type=float, nargs="+", default=[], metavar="C",
                   help="chinchilla: also report N_opt, D_opt (with intervals) at these budgets")
    p.add_argument("--holdout-above", type=float, metavar="C",
                   help="back-test: fit on runs with C <= this, predict the runs above")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--save", metavar="FILE.json", help="write the fit as JSON (loadable by `allocate --law`)")
    p.add_argument("--plot", metavar="FILE.png", help="draw the fit and the runs")
    p.set_defaults(func=run_fit)

    names = "\n".join(f"  {k:24s} {v.source}" for k, v in PUBLISHED_LAWS.items())
    a = sub.add_parser(
        "allocate", help="compute-optimal N and D for a FLOP budget",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Split a training budget C = 6 N D between parameters N and tokens D under a published "
                    "law or a saved fit; with --inference-tokens, minimise training + inference FLOPs "
                    "(Sardana et al. 2023).",
        epilog=f"published laws:\n{names}")
    a.add_argument("--flops", type=float, required=True, metavar="C", help="training budget in FLOPs, e.g. 1e24")
    a.add_argument("--law", default="hoffmann2022", metavar="NAME|FILE.json",
                   help="published law name (see below) or a fit saved by `scalinglab fit --save`")
    a.add_argument("--inference-tokens", type=float, metavar="T",
                   help="tokens to be served over the model's life: inference-aware optimum")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=run_allocate)


# ----------------------------------------------------------------------- fit

def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


def _estimator(args):
    from scalinglab.fit import ChinchillaFit, FrontierFit, KaplanFit, PowerLawFit
    if args.law == "chinchilla":
        return ChinchillaFit(starts=args.grid)
    if args.law == "kaplan":
        return KaplanFit()
    if args.law == "frontier":
        return FrontierFit()
    return PowerLawFit(x=args.x or "C")


def _fit_isoflop(args, runs, out_warnings):
    from scalinglab.fit import bootstrap_statistic, group_budgets, isoflop_profiles
    if args.budget is None:      # fix the grouping once so resamples keep the same budgets
        labels = group_budgets(runs["C"].to_numpy(float))
        lc = np.log(runs["C"].to_numpy(float))
        centre = {k: float(np.exp(lc[labels == k].mean())) for k in np.unique(labels)}
        runs = runs.assign(_budget=[centre[k] for k in labels])
        budget = "_budget"
    else:
        budget = args.budget
    res = isoflop_profiles(runs, budget=budget)
    out = res.to_dict()
    out_warnings.extend(res.warnings)
    names = ("a", "b")
    if args.bootstrap > 0 and np.isfinite(res.a):
        def stat(r):
            rr = isoflop_profiles(r, budget=budget)
            return {"a": rr.a, "b": rr.b}
        boot = bootstrap_statistic(stat, runs, n_resamples=args.bootstrap, level=args.level,
                                   cluster=args.cluster, random_state=args.random_state)
        out.update(boot.to_dict())
    else:
        out["se"] = {k: out.get(f"{k}_se") for k in names}
        out["ci"] = {k: [None, None] for k in names}
    return res, out, runs


def run_fit(args) -> int:
    from scalinglab.fit import ConvergenceWarning, backtest, bootstrap, drop_highest_loss, load_runs

    if args.bootstrap < 0:
        raise FitError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if args.x is not None and args.law != "power":
        raise FitError("--x is only for --law power")
    require = _REQUIRE.get(args.law, ("loss",))
    x = None
    if args.law == "power":
        x = args.x or "C"
        require = ("loss",)
    no_blocks = args.seed_column == "none"
    runs = load_runs(args.file, n=args.n, d=args.d, c=args.c, loss=args.loss,
                     seed=None if no_blocks else args.seed_column, x=x, require=require)
    args.cluster = None if no_blocks else (args.seed_column or "auto")
    runs = drop_highest_loss(runs, args.drop_highest_loss)
    notes: list[str] = []

    if args.law == "isoflop":
        if args.holdout_above is not None:
            raise FitError("a back-test needs a law that predicts loss: use --law chinchilla, kaplan, power "
                           "or frontier with --holdout-above")
        fit, out, runs = _fit_isoflop(args, runs, notes)
    else:
        est = _estimator(args)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")        # printed below as one-line notes
            est.fit(runs)
            notes.extend(est.convergence_warnings_)
            out = est.to_dict()
            if args.law == "chinchilla" and args.at_flops:
                out["compute_optimal"] = est.compute_optimal(args.at_flops).to_dict(orient="records")
                extra = est.derived({k: np.array([v]) for k, v in est.params_.items()}, args.at_flops)
                out["derived"].update({k: float(v[0]) for k, v in extra.items()})
            if args.bootstrap > 0:
                boot = bootstrap(est, runs, n_resamples=args.bootstrap, level=args.level,
                                 cluster=args.cluster, random_state=args.random_state,
                                 at_flops=args.at_flops if args.law == "chinchilla" else (), n_jobs=args.jobs)
                out.update(boot.to_dict())
                if boot.n_failed:
                    notes.append(f"{boot.n_failed} of {boot.n_resamples} bootstrap refits did not converge and "
                                 "are left out of the intervals")
            else:
                out["se"] = {k: None for k in est.param_names}
                out["ci"] = {k: [None, None] for k in est.param_names}
            if args.holdout_above is not None:
                bt = backtest(est, runs, holdout_above=args.holdout_above)
                out["backtest"] = {k: v for k, v in bt.to_dict().items() if k != "fit"}
                out["backtest"]["fit_warnings"] = list(bt.estimator.convergence_warnings_)
                notes.extend(f"back-test fit: {m}" for m in bt.estimator.convergence_warnings_)
        notes.extend(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)
                                   and not issubclass(w.category, ConvergenceWarning)))
        fit = est
    out["source"] = {"file": str(args.file), "n_runs": int(len(runs)), "dropped_highest_loss": args.drop_highest_loss}
    out = _jsonable(out)

    if args.save:
        try:
            Path(args.save).write_text(json.dumps(out, indent=2) + "\n")
        except OSError as exc:
            raise DataError(f"cannot write {args.save}: {exc}") from None
    if args.plot:
        from scalinglab.fit.plot import plot_fit
        plot_fit(fit, runs, args.plot, holdout_above=args.holdout_above)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(_fit_text(args, out))
    for note in notes:
        print(f"scalinglab: warning: {note}", file=sys.stderr)
    return 0


def _num(v, fmt=".4g") -> str:
    return "—" if v is None else format(v, fmt)


def _fit_text(args, out: dict) -> str:
    lines = []
    src = out["source"]
    dropped = f"; {src['dropped_highest_loss']} highest-loss runs dropped" if src["dropped_highest_loss"] else ""
    lines.append(f"{args.law} fit to {src['n_runs']} runs from {src['file']}{dropped}")
    if args.law == "isoflop":
        lines.append("  IsoFLOP profiles (Hoffmann et al. 2022, Approach 2): parabola of loss in log N per budget")
        lines.append(f"  {'C':>10} {'runs':>5} {'N_opt':>10} {'D_opt':>10} {'loss':>7}  note")
        for p in out["profiles"]:
            lines.append(f"  {_num(p['C'], '.3g'):>10} {p['n_runs']:>5} {_num(p['N_opt'], '.3g'):>10} "
                         f"{_num(p['D_opt'], '.3g'):>10} {_num(p['loss_opt'], '.4f'):>7}  {p['note']}")
        keys = ("a", "b")
    else:
        x = args.x or "C"
        lines.append(f"  {_FORMULA[args.law]}" if args.law != "power" else f"  L({x}) = E + A {x}^-alpha")
        keys = [k for k in out if k in ("E", "A", "B", "alpha", "beta", "N_c", "D_c", "alpha_N", "alpha_D")]
    level = out.get("bootstrap", {}).get("level", args.level)
    rows = list(dict.fromkeys([*keys, *out.get("derived", {}), *out.get("se", {})]))
    w = max(10, *(len(k) for k in rows))
    lines.append(f"  {'':{w}} {'estimate':>12} {'se':>10}   {int(round(level * 100))}% interval")
    for k in rows:
        est = out.get(k, out.get("derived", {}).get(k))
        se = out.get("se", {}).get(k)
        lo, hi = out.get("ci", {}).get(k, [None, None])
        interval = f"[{_num(lo)}, {_num(hi)}]" if lo is not None else "—"
        lines.append(f"  {k:{w}} {_num(est):>12} {_num(se):>10}   {interval}")
    if "fit" in out:
        f = out["fit"]
        lines.append(f"  fit: Huber (delta {f['delta']:g}) on log residuals, summed; {f['n_starts']} starts, "
                     f"{f['n_converged_starts']} converged; best: {f['status']}; objective {f['objective']:.6g}")
    if "bootstrap" in out:
        b = out["bootstrap"]
        unit = f"blocks of '{b['cluster']}' ({b['n_clusters']})" if b["cluster"] else "runs"
        lines.append(f"  bootstrap: {b['n_resamples']} resamples of {unit}, percentile intervals")
    if "approach1" in out:
        a1 = out["approach1"]
        lines.append(f"  Approach 1 (frontier runs): N_opt ∝ C^{_num(a1['a'], '.3f')} (se {_num(a1['a_se'], '.3f')}), "
                     f"D_opt ∝ C^{_num(a1['b'], '.3f')}")
    for row in out.get("compute_optimal", []):
        lines.append(f"  at C = {row['flops']:.3g}: N_opt = {row['N_opt']:.3g}, D_opt = {row['D_opt']:.3g} "
                     f"({row['tokens_per_param']:.3g} tokens/param), loss {row['loss']:.4f}")
    if "backtest" in out:
        bt = out["backtest"]
        s = bt["summary"]
        lines.append(f"back-test: fit on {s['n_train']} runs with C <= {bt['holdout_above']:.3g}, predicted "
                     f"{s['n_test']} above: mean |rel error| {100 * s['mean_abs_rel_error']:.2f}%, "
                     f"max {100 * s['max_abs_rel_error']:.2f}%, mean {100 * s['mean_rel_error']:+.2f}%")
        lines.append(f"  {'run':>8} {'C':>10} {'measured':>9} {'predicted':>9} {'rel_error':>9}")
        for r in bt["predictions"]:
            lines.append(f"  {str(r['run'])[:12]:>8} {r['C']:>10.3g} {r['measured']:>9.4f} {r['predicted']:>9.4f} "
                         f"{100 * r['rel_error']:>+8.2f}%")
    return "\n".join(lines)


# ------------------------------------------------------------------ allocate

def run_allocate(args) -> int:
    from scalinglab.fit.allocate import compute_optimal, inference_optimal, load_law

    name, law = load_law(args.law)
    alloc = compute_optimal(law, args.flops, name=name)
    out = alloc.to_dict()
    inf = None
    if args.inference_tokens is not None:
        inf = inference_optimal(law, args.flops, args.inference_tokens, name=name)
        out["inference_aware"] = {k: v for k, v in inf.to_dict().items() if k not in ("law", "flops")}
    out = _jsonable(out)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    loss = f", predicted loss {alloc.loss:.4f}" if alloc.loss is not None else ""
    print(f"{name} at C = {alloc.flops:.3g} FLOPs: N_opt = {alloc.N_opt:.4g} params, D_opt = {alloc.D_opt:.4g} "
          f"tokens ({alloc.tokens_per_param:.3g} tokens/param){loss}")
    if inf is not None:
        print(f"inference-aware (Sardana et al. 2023) for T = {inf.inference_tokens:.3g} inference tokens: "
              f"N = {inf.N:.4g}, D = {inf.D:.4g} ({inf.tokens_per_param:.3g} tokens/param), same loss; "
              f"total {inf.total_flops:.4g} FLOPs vs {inf.compute_optimal_total_flops:.4g}: saves "
              f"{inf.flops_saved:.3g} FLOPs ({100 * inf.flops_saved_fraction:.1f}%)")
    return 0
