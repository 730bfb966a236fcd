"""``scalinglab fit`` and ``scalinglab allocate``: argument parsing and printing only.

Both print from the library's result objects: ``fit`` from
``FitResult.to_dict()`` (the schema of docs/fit-json.md), ``allocate`` from
the saved fit it is given.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from scalinglab.errors import FitError

EXIT_UNSUPPORTED = 1       # the fit ran, but some intervals are not supported by the data


def register(sub, study_sub) -> None:
    from scalinglab.fit import LAWS
    from scalinglab.fit.allocate import PUBLISHED_LAWS
    from scalinglab.fit.isoflop import METHODS

    p = sub.add_parser(
        "fit", help="fit a scaling law to a table of runs",
        description="Fit a scaling law to runs in a CSV, Parquet or scalinglab SQLite file. Columns are found "
                    "by name (N: params/'Model Size', D: tokens/examples, C: flops/'Training FLOP', loss: "
                    "loss/val_loss) or given with --n/--d/--c/--loss; a missing N, D or C is derived from the "
                    "other two with C = 6 N D (or --flops-per-token). Exit status 1: the fit ran but some "
                    "intervals are not supported by the data; 2: an error.")
    p.add_argument("file", help="runs table: .csv, .parquet or .db (scalinglab run store)")
    p.add_argument("--law", choices=list(LAWS), default="chinchilla",
                   help="chinchilla (Approach 3), kaplan, power (one variable, see --x), frontier (loss vs "
                        "compute frontier + Approach 1), approach1, isoflop (Approach 2); default chinchilla")
    cols = p.add_argument_group("columns")
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
    cols.add_argument("--flops-per-token", metavar="COLUMN|K*N",
                      help="FLOPs per token (or example) for deriving N, D or C: a column, or K*N (default 6*N)")
    cols.add_argument("--weight", metavar="COLUMN", help="per-run weights of the fit's loss terms")
    sel = p.add_argument_group("selection")
    sel.add_argument("--where", metavar="EXPR", help="keep the rows matching a pandas query, e.g. "
                                                     "\"outlier == False\" or \"dataset == 'c4'\"")
    sel.add_argument("--study", metavar="NAME", help="a run store: fit only this study's runs")
    sel.add_argument("--family", metavar="NAME", help="a run store: fit only runs of this family (e.g. mnist_cnn)")
    sel.add_argument("--group-by", metavar="COLUMN", help="one fit per value of COLUMN")
    sel.add_argument("--variant", metavar="COLUMN",
                     help="compare the values of COLUMN (e.g. dropout) as compute multipliers of one law with "
                          "shared exponents (power, chinchilla, kaplan)")
    sel.add_argument("--reference", metavar="VALUE", help="--variant: the value the others are measured against")
    sel.add_argument("--allow-mixed", action="store_true",
                     help="fit a table that repeats settings across experiments anyway (pooling them)")
    sel.add_argument("--drop-highest-loss", type=int, default=0, metavar="K",
                     help="drop the K runs with the highest loss first (Besiroglu et al. 2024 drop 5)")
    law = p.add_argument_group("law settings")
    law.add_argument("--isoflop-method", choices=METHODS, default="parabola",
                     help="isoflop minima: parabola over the whole sweep (default), parabola in a window around "
                          "the lowest loss, or akima interpolation (Porian et al. 2024)")
    law.add_argument("--window", type=float, default=0.5, metavar="DECADES",
                     help="--isoflop-method window: sizes within this many decades of the lowest loss (0.5)")
    law.add_argument("--include-outside", action="store_true",
                     help="isoflop: keep minima outside the sampled sizes in the exponent fit")
    law.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                     help="hold a parameter fixed, e.g. --fix E=1.69 (repeatable)")
    law.add_argument("--tie", action="append", default=[], metavar="NAME=OTHER",
                     help="make a parameter equal another, e.g. --tie beta=alpha (repeatable)")
    law.add_argument("--grid", choices=("hoffmann", "coarse"), default=None,
                     help="chinchilla start grid: hoffmann (4,500 starts, default) or coarse (243)")
    unc = p.add_argument_group("uncertainty, prediction and back-test")
    unc.add_argument("--bootstrap", type=int, default=200, metavar="K",
                     help="bootstrap resamples for standard errors and intervals (default 200; 0 skips)")
    unc.add_argument("--level", type=float, default=0.95, help="interval coverage (default 0.95)")
    unc.add_argument("--random-state", type=int, default=0, help="bootstrap random seed (default 0)")
    unc.add_argument("--jobs", type=int, default=1, help="processes for the bootstrap (default 1)")
    unc.add_argument("--at-flops", type=float, nargs="+", default=[], metavar="C",
                     help="also report N_opt, D_opt and loss (with intervals) at these budgets")
    unc.add_argument("--holdout-above", type=float, metavar="VALUE",
                     help="back-test: fit on runs with axis <= VALUE, predict those above")
    unc.add_argument("--holdout-axis", default="C", choices=("C", "N", "D", "x"),
                     help="axis of the back-test split: C (default), N, D, or x (the power law's input)")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print JSON (docs/fit-json.md) instead of a table")
    out.add_argument("--save", metavar="FILE.json", help="write the fit as JSON, with its bootstrap draws "
                                                        "(loadable by `allocate --law`)")
    out.add_argument("--plot", metavar="FILE.png", help="draw the fit and the runs")
    p.set_defaults(func=run_fit)

    names = "\n".join(f"  {k:24s} {v.source}" for k, v in PUBLISHED_LAWS.items())
    a = sub.add_parser(
        "allocate", help="compute-optimal N and D for a FLOP budget",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Split a training budget C = 6 N D between parameters N and tokens D under a published "
                    "law or a saved fit (with the fit's bootstrap intervals); with --inference-tokens, minimise "
                    "training + inference FLOPs (Sardana et al. 2023).",
        epilog=f"published laws:\n{names}")
    a.add_argument("--flops", type=float, required=True, metavar="C", help="training budget in FLOPs, e.g. 1e24")
    a.add_argument("--law", default="hoffmann2022", metavar="NAME|FILE.json",
                   help="published law name (see below) or a fit saved by `scalinglab fit --save`")
    a.add_argument("--inference-tokens", type=float, metavar="T",
                   help="tokens to be served over the model's life: inference-aware optimum")
    a.add_argument("--unique-tokens", type=float, metavar="U",
                   help="unique training tokens available (data-constrained laws: muennighoff2023 or a saved "
                        "data-constrained fit); past a few epochs the budget goes into parameters")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=run_allocate)


# ----------------------------------------------------------------------- fit

def _pairs(items: list[str], flag: str, value=float) -> dict:
    out = {}
    for item in items:
        name, sep, v = item.partition("=")
        if not sep or not name.strip() or not v.strip():
            raise FitError(f"{flag} takes NAME=VALUE, got {item!r}")
        try:
            out[name.strip()] = value(v.strip())
        except ValueError:
            raise FitError(f"{flag} {item!r}: {v.strip()!r} is not a number") from None
    return out


def _flops_per_token(spec: str | None):
    if spec is None:
        return None
    m = re.fullmatch(r"\s*([0-9.]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*N\s*", spec)
    return float(m.group(1)) if m else spec


def _write_json(path: str, obj) -> None:
    from scalinglab.safe_io import write_text_atomic

    out = Path(path)  # replaced atomically: a link planted at the path is replaced, not followed
    write_text_atomic(out.parent, out.name, json.dumps(obj, indent=2) + "\n")


def run_fit(args) -> int:
    from scalinglab.fit import fit_groups, fit_law

    if args.bootstrap < 0:
        raise FitError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if args.family:  # a run store's family column, as a --where condition
        family = f"family == {args.family!r}"
        args.where = f"({args.where}) and {family}" if args.where else family
    no_blocks = args.seed_column == "none"
    columns = {k: v for k, v in (("n", args.n), ("d", args.d), ("c", args.c), ("loss", args.loss),
                                 ("seed", None if no_blocks else args.seed_column)) if v is not None}
    options = dict(x=args.x, n_resamples=args.bootstrap, level=args.level,
                   cluster=None if no_blocks else (args.seed_column or "auto"), random_state=args.random_state,
                   n_jobs=args.jobs, at_flops=args.at_flops, holdout_above=args.holdout_above,
                   holdout_axis=args.holdout_axis, budget=args.budget, isoflop_method=args.isoflop_method,
                   window_decades=args.window, include_outside=args.include_outside,
                   fixed=_pairs(args.fix, "--fix") or None, tie=_pairs(args.tie, "--tie", str) or None,
                   weight=args.weight, where=args.where, study=args.study, starts=args.grid, columns=columns,
                   flops_per_token=_flops_per_token(args.flops_per_token), check_mixed=not args.allow_mixed)
    if args.variant:
        return _run_variants(args, options)
    if args.group_by:
        results = fit_groups(args.file, args.law, group_by=args.group_by, drop_highest=args.drop_highest_loss,
                             **options)
        out = {"schema_version": 1, "group_by": args.group_by,
               "groups": {str(k): r.to_dict() for k, r in results.items()}}
        saved = {**out, "groups": {str(k): r.to_dict(samples=True) for k, r in results.items()}}
        text = _groups_text(args, out)
        warn = [f"{args.group_by} = {k}: {w}" for k, r in results.items() for w in r.warnings]
        supported = all(r.supported for r in results.values())
    else:
        result = fit_law(args.file, args.law, drop_highest=args.drop_highest_loss, **options)
        out, saved = result.to_dict(), result.to_dict(samples=True)
        text = fit_text(out)
        warn, supported = result.warnings, result.supported
    if args.save:
        _write_json(args.save, saved)
    if args.plot:
        from scalinglab.fit.plot import plot_fit, plot_groups
        if args.group_by:
            plot_groups(results, args.plot, title=f"{args.law} fits by {args.group_by}")
        else:
            plot_fit(result, args.plot)
    print(json.dumps(out, indent=2) if args.json else text)
    for note in warn:
        print(f"scalinglab: warning: {note}", file=sys.stderr)
    if not supported and args.bootstrap > 0:
        print("scalinglab: warning: some intervals are not supported by the data (see 'supported' and 'note'); "
              "exit status 1", file=sys.stderr)
        return EXIT_UNSUPPORTED
    return 0


def _run_variants(args, options) -> int:
    from scalinglab.fit import compare_variants
    from scalinglab.fit.result import clean

    comparison, notes = compare_variants(args.file, args.law, variant=args.variant, reference=args.reference,
                                         where=args.where, columns=options["columns"], weight=args.weight,
                                         flops_per_token=options["flops_per_token"], x=args.x, study=args.study,
                                         n_resamples=args.bootstrap, level=args.level,
                                         random_state=args.random_state)
    out = clean({"schema_version": 1, "variant_comparison": comparison.to_dict(), "warnings": notes})
    if args.save:
        _write_json(args.save, out)
    print(json.dumps(out, indent=2) if args.json else comparison.summary())
    for note in notes:
        print(f"scalinglab: warning: {note}", file=sys.stderr)
    return 0


def _num(v, fmt=".4g") -> str:
    return "—" if v is None else format(v, fmt)


def _selection_line(d: dict) -> str:
    sel = d["selection"]
    parts = [f"{d['law']} fit to {sel['n_runs']} runs from {sel['source']}"]
    if sel.get("where"):
        parts.append(f"where {sel['where']} ({sel['dropped'].get('where', 0)} dropped)")
    if sel.get("dropped", {}).get("highest_loss"):
        parts.append(f"{sel['dropped']['highest_loss']} highest-loss runs dropped")
    if sel.get("weight"):
        parts.append(f"weighted by {sel['weight']!r}")
    return "; ".join(parts)


def fit_text(d: dict) -> str:
    """The table ``scalinglab fit`` prints for one fit (from ``FitResult.to_dict()``)."""
    lines = [_selection_line(d), f"  {d['formula']}"]
    for col, how in d["selection"].get("derived", {}).items():
        lines.append(f"  {col} derived as {how}")
    if "profiles" in d["tables"]:
        m = d["method"]
        lines.append(f"  IsoFLOP minima ({m['isoflop_method']}; budgets: {m['budgets']}; D_opt from "
                     f"{d['diagnostics'].get('D_opt_from', 'the runs')})")
        lines.append(f"  {'C':>10} {'runs':>5} {'N_opt':>10} {'D_opt':>10} {'loss':>7} {'below':>6} {'above':>6}  note")
        for p in d["tables"]["profiles"]:
            lines.append(f"  {_num(p['C'], '.4g'):>10} {p['n_runs']:>5} {_num(p['N_opt'], '.3g'):>10} "
                         f"{_num(p['D_opt'], '.3g'):>10} {_num(p['loss_opt'], '.4f'):>7} "
                         f"{_num(p['decades_below'], '.2f'):>6} {_num(p['decades_above'], '.2f'):>6}  {p['note']}")
    level = d["method"]["level"]
    rows = [*d["params"], *d["derived"]]
    w = max(10, *(len(k) for k in rows))
    lines.append(f"  {'':{w}} {'estimate':>12} {'se':>10}   {int(round(level * 100))}% interval")
    for k in rows:
        est = d["params"].get(k, d["derived"].get(k))
        iv = d["intervals"].get(k, {})
        if iv.get("lo") is not None and iv.get("supported", True):
            interval = f"[{_num(iv['lo'])}, {_num(iv['hi'])}] {iv['method']}"
        elif not iv.get("supported", True):
            interval = "unsupported"
        else:
            interval = "—" if iv.get("note") != "fixed at this value" else "fixed"
        lines.append(f"  {k:{w}} {_num(est):>12} {_num(iv.get('se')):>10}   {interval}")
    diag = d["diagnostics"]
    if "n_starts" in diag:
        lines.append(f"  fit: Huber (delta {diag['delta']:g}) on log residuals, summed; {diag['n_starts']} starts, "
                     f"{diag['n_converged_starts']} converged; best: {diag['status']}; "
                     f"objective {_num(diag['objective'], '.6g')}")
    boot = d["method"].get("bootstrap")
    if boot:
        unit = f"blocks of '{boot['cluster']}' ({boot['n_clusters']})" if boot["cluster"] else "runs"
        lines.append(f"  bootstrap: {boot['n_resamples']} resamples of {unit}, percentile intervals")
    bt = d.get("backtest")
    if bt:
        lines.append(f"back-test: fit on {bt['n_train']} {'budgets' if d['law'] == 'isoflop' else 'runs'} with "
                     f"{bt['axis']} <= {bt['holdout_above']:.4g}, predicted {bt['target']} of {bt['n_test']} above: "
                     f"mean |rel error| {100 * bt['mean_abs_rel_error']:.2f}%, max "
                     f"{100 * bt['max_abs_rel_error']:.2f}%, mean {100 * bt['mean_rel_error']:+.2f}%")
        for r in d["tables"]["backtest"]:
            label = str(r.get("run", ""))[:12] or f"C={r['C']:.3g}"
            lines.append(f"  {label:>12} {r.get(bt['axis'], r.get('C')):>10.4g} measured {r['measured']:.4g} "
                         f"predicted {r['predicted']:.4g} ({100 * r['rel_error']:+.2f}%)")
    return "\n".join(lines)


def _headline(d: dict) -> list[str]:
    keys = [*d["params"], *d["derived"]]
    return [k for k in keys if k in ("E", "alpha", "beta", "alpha_N", "alpha_D", "a", "b") or "@" in k]


def _groups_text(args, out: dict) -> str:
    groups = out["groups"]
    first = next(iter(groups.values()))
    keys = _headline(first)
    lines = [f"{args.law} fits by {args.group_by} ({len(groups)} groups) from {args.file}",
             f"  {first['formula']}",
             "  " + f"{args.group_by:>14} {'runs':>5} " + " ".join(f"{k:>24}" for k in keys)]
    for value, d in groups.items():
        cells = []
        for k in keys:
            est = d["params"].get(k, d["derived"].get(k))
            iv = d["intervals"].get(k, {})
            ci = f" [{_num(iv['lo'], '.3g')}, {_num(iv['hi'], '.3g')}]" if iv.get("lo") is not None else ""
            cells.append(f"{_num(est, '.4g') + ci:>24}")
        lines.append(f"  {value:>14} {d['selection']['n_runs']:>5} " + " ".join(cells))
    return "\n".join(lines)


# ------------------------------------------------------------------ allocate

def run_allocate(args) -> int:
    from scalinglab.fit.allocate import allocate_with_intervals, inference_optimal, load_law, with_unique_tokens
    from scalinglab.fit.result import clean

    name, law, result = load_law(args.law, with_result=True)
    alloc, intervals = allocate_with_intervals(law, args.flops, result, name=name, unique_tokens=args.unique_tokens)
    law = with_unique_tokens(law, args.unique_tokens)
    out = alloc.to_dict()
    if args.unique_tokens is not None:
        out["unique_tokens"] = args.unique_tokens
        out["epochs"] = alloc.D_opt / args.unique_tokens
    if intervals:
        out["intervals"] = intervals
    inf = None
    if args.inference_tokens is not None:
        inf = inference_optimal(law, args.flops, args.inference_tokens, name=name)
        out["inference_aware"] = {k: v for k, v in inf.to_dict().items() if k not in ("law", "flops")}
    out = clean(out)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0

    def ci(k):
        iv = intervals.get(k)
        return f" [{iv['lo']:.4g}, {iv['hi']:.4g}]" if iv and iv.get("lo") is not None else ""
    loss = f", predicted loss {alloc.loss:.4f}{ci('loss')}" if alloc.loss is not None else ""
    print(f"{name} at C = {alloc.flops:.4g} FLOPs: N_opt = {alloc.N_opt:.4g}{ci('N_opt')} params, "
          f"D_opt = {alloc.D_opt:.4g}{ci('D_opt')} tokens ({alloc.tokens_per_param:.3g} tokens/param){loss}")
    if args.unique_tokens is not None:
        print(f"  with {args.unique_tokens:.4g} unique tokens: {out['epochs']:.3g} epochs of the unique data")
    if intervals:
        level = next(iter(intervals.values()))["level"]
        print(f"  {int(round(100 * level))}% intervals from the fit's {next(iter(intervals.values()))['n_resamples']} "
              "bootstrap draws")
    if inf is not None:
        print(f"inference-aware (Sardana et al. 2023) for T = {inf.inference_tokens:.3g} inference tokens: "
              f"N = {inf.N:.4g}, D = {inf.D:.4g} ({inf.tokens_per_param:.3g} tokens/param), same loss; "
              f"total {inf.total_flops:.4g} FLOPs vs {inf.compute_optimal_total_flops:.4g}: saves "
              f"{inf.flops_saved:.3g} FLOPs ({100 * inf.flops_saved_fraction:.1f}%)")
    return 0
