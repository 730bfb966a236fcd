"""The MNIST scaling study: the course exercise as library calls.

``run_mnist_study("quick")`` runs the preset sweep into the run database,
then the first analysis: the compute-efficient frontier (the lowest
validation loss reached at each compute level across all runs) with a
power-law fit ``L = E + A C^-alpha``, and the compute-optimal model size per
compute level with its exponent. Everything comes back as DataFrames and
dataclasses; the CLI only prints them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scalinglab.errors import ConfigError
from scalinglab.store import RunStore
from scalinglab.sweep.engine import SweepSummary, run_sweep
from scalinglab.families.mnist.grid import MnistGrid, preset

FAMILY = "mnist_cnn"
EXPORT_COLUMNS = ["width", "fraction", "seed", "dropout", "lr", "batch_size", "precision", "params",
                  "flops", "examples", "val_loss", "val_acc", "status", "wall_s", "key", "code_version"]


def grid_name(grid: MnistGrid) -> str:
    digest = hashlib.sha256(json.dumps(grid.to_dict(), sort_keys=True).encode()).hexdigest()
    return f"mnist-{digest[:8]}"


def sweep_mnist(grid: MnistGrid, *, db: str | Path = "runs.db", name: str | None = None,
                workers: int = 2, executor: str = "local", address: str | None = None,
                progress: bool = True) -> SweepSummary:
    """Run (or resume) every run of ``grid``; results land in ``db``."""
    with RunStore(db) as store:
        return run_sweep(store, name or grid_name(grid), FAMILY, grid.configs(), workers=workers,
                         executor=executor, address=address, progress=progress,
                         info={"grid": grid.to_dict()})


def load_runs_frame(db: str | Path, *, study: str | None = None, status=None) -> pd.DataFrame:
    """Runs from a database as a DataFrame (config keys and results as columns)."""
    if not Path(db).exists():
        raise ConfigError(f"database {db} does not exist; run a sweep first or check --db")
    with RunStore(db) as store:
        return store.runs(study=study, status=status)


def export_runs(db: str | Path, *, fmt: str = "csv", study: str | None = None,
                status: str | None = None) -> str:
    """Runs as CSV (one row per run) or JSON records (with curves and metrics)."""
    runs = load_runs_frame(db, study=study, status=status)
    if fmt == "json":
        return runs.to_json(orient="records", indent=1) + "\n"
    if fmt != "csv":
        raise ConfigError(f"format = {fmt!r} is invalid: must be 'csv' or 'json'")
    cols = [c for c in EXPORT_COLUMNS if c in runs.columns]
    cols += [c for c in runs.columns if c not in cols and c not in ("curve", "metrics", "versions",
                                                                   "owner", "heartbeat", "config")]
    buf = io.StringIO()
    runs[cols].to_csv(buf, index=False)
    return buf.getvalue()


# ---------------------------------------------------------------- analysis

CONFIG_AXES = ["width", "fraction", "dropout"]  # a model x data setting, averaged over seeds


def with_config_defaults(runs: pd.DataFrame) -> pd.DataFrame:
    """Fill config columns a run left at its default (e.g. no ``dropout`` key) with that default."""
    from dataclasses import MISSING, fields as dc_fields

    from scalinglab.families.mnist.train import MnistRunConfig

    runs = runs.copy()
    for f in dc_fields(MnistRunConfig):
        if f.default is not MISSING:
            runs[f.name] = runs[f.name].fillna(f.default) if f.name in runs else f.default
    return runs


def select_lr(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (width, fraction, dropout), keep the runs of the LR with the lowest seed-mean val loss.

    With one LR per setting this returns the runs unchanged; with ``--lr tune``
    every candidate stays in the database and this picks among them.
    """
    runs = runs[runs.status == "complete"]
    if runs.empty or runs.groupby(CONFIG_AXES).lr.nunique().max() <= 1:
        return runs
    mean = runs.groupby([*CONFIG_AXES, "lr"], as_index=False).val_loss.mean()
    best = mean.loc[mean.groupby(CONFIG_AXES).val_loss.idxmin(), [*CONFIG_AXES, "lr"]]
    return runs.merge(best, on=[*CONFIG_AXES, "lr"])


def seed_means(runs: pd.DataFrame) -> pd.DataFrame:
    """One point per (width, fraction, dropout): mean and spread over seeds, in fit columns N, D, C, loss."""
    g = runs.groupby(CONFIG_AXES)
    points = g.agg(N=("params", "first"), D=("examples", "first"), C=("flops", "first"),
                   loss=("val_loss", "mean"), loss_sd=("val_loss", "std"), acc=("val_acc", "mean"),
                   lr=("lr", "first"), n_seeds=("seed", "nunique")).reset_index()
    points["run"] = [f"w{w} f{f:.4g} d{d:g}" for w, f, d in zip(points.width, points.fraction, points.dropout)]
    return points


@dataclass
class FrontierAnalysis:
    """The exercise's questions for one dropout setting."""

    dropout: float
    points: pd.DataFrame  # seed-mean points, all settings
    frontier: pd.DataFrame  # points on the compute-efficient frontier
    fit: dict  # L = E + A C^-alpha on the frontier: params, se, ci
    fit_samples: pd.DataFrame  # the bootstrap resamples of (E, A, alpha) behind fit's intervals
    approach1: dict  # N_opt ~ C^a, D_opt ~ C^b (and width_opt ~ C^a_w): estimates, se, ci
    acc_frontier: pd.DataFrame  # the accuracy frontier (highest accuracy at or below each C)

    def to_dict(self) -> dict:
        return {"dropout": self.dropout, "fit": self.fit, "approach1": self.approach1,
                "frontier": self.frontier[["run", "width", "fraction", "N", "D", "C", "loss", "acc"]]
                .to_dict(orient="records")}


def analyse_frontier(points: pd.DataFrame, *, n_resamples: int = 200, seed: int = 0) -> FrontierAnalysis:
    """Frontier power law and compute-optimal size exponents, with bootstrap intervals."""
    import numpy as np

    from scalinglab.fit import approach1, bootstrap, bootstrap_statistic, compute_frontier, fit_frontier

    fit = fit_frontier(points)
    boot = bootstrap(fit, points, n_resamples=n_resamples, cluster=None, random_state=seed)

    def exponents(df):
        r = approach1(df)
        best = compute_frontier(df)
        a_w = np.polyfit(np.log(best.C.to_numpy(float)), np.log(best.width.to_numpy(float)), 1)[0]
        return {"a": r.a, "b": r.b, "a_width": float(a_w)}

    a1 = bootstrap_statistic(exponents, points, n_resamples=n_resamples, cluster=None, random_state=seed)
    acc = points.assign(err=1 - points.acc)
    acc_front = compute_frontier(acc, loss="err").assign(acc=lambda d: 1 - d.err)
    return FrontierAnalysis(
        dropout=float(points.dropout.iloc[0]), points=points, frontier=fit.frontier_,
        fit={"params": dict(fit.params_), **boot.to_dict(), "converged": bool(getattr(fit, "converged_", True))},
        fit_samples=boot.samples,
        approach1={"estimate": a1.estimate, **a1.to_dict()},
        acc_frontier=acc_front)


@dataclass
class MnistStudyResult:
    study: str
    db: str
    out: Path
    sweep: SweepSummary
    analyses: list[FrontierAnalysis] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"study {self.study} in {self.db}: {self.sweep.describe()}"]
        if self.sweep.ran:
            lines.append(f"training ran at {self.info['pct_of_peak']:.1f}% of this machine's measured peak "
                         f"({self.info['peak_gflops']:.0f} GFLOP/s); study wall time "
                         f"{self.info['total_wall_s']:.0f} s")
        for a in self.analyses:
            p, ci = a.fit["params"], a.fit["ci"]
            e1, ci1 = a.approach1["estimate"], a.approach1["ci"]
            lines += [
                "",
                f"dropout {a.dropout:g}: compute-efficient frontier ({len(a.frontier)} of {len(a.points)} settings)",
                a.frontier[["width", "fraction", "C", "loss", "acc"]].to_string(
                    index=False, formatters={"C": "{:.3g}".format, "loss": "{:.4f}".format,
                                             "acc": "{:.4f}".format, "fraction": "{:.4g}".format}),
                f"  L(C) = E + A C^-alpha: alpha = {p['alpha']:.3f} [{ci['alpha'][0]:.3f}, {ci['alpha'][1]:.3f}], "
                f"E = {p['E']:.4f} [{ci['E'][0]:.4f}, {ci['E'][1]:.4f}]",
                f"  compute-optimal size: N_opt ~ C^{e1['a']:.3f} [{ci1['a'][0]:.3f}, {ci1['a'][1]:.3f}], "
                f"width_opt ~ C^{e1['a_width']:.3f}, D_opt ~ C^{e1['b']:.3f} [{ci1['b'][0]:.3f}, {ci1['b'][1]:.3f}]",
            ]
        lines.append(f"\nanalysis written to {self.out}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"study": self.study, "db": self.db, "info": self.info,
                "analyses": [a.to_dict() for a in self.analyses]}


def analyse_mnist(runs: pd.DataFrame, *, n_resamples: int = 200) -> list[FrontierAnalysis]:
    """The first analysis of an MNIST study, one per dropout setting."""
    from scalinglab.errors import FitError

    chosen = select_lr(with_config_defaults(runs))
    if chosen.empty:
        raise FitError("the study has no complete runs to analyse; run the sweep first")
    points = seed_means(chosen)
    return [analyse_frontier(group.reset_index(drop=True), n_resamples=n_resamples)
            for _, group in points.groupby("dropout")]


def run_mnist_study(preset_name: str = "quick", *, db: str | Path = "runs.db", out: str | Path | None = None,
                    overrides: dict | None = None, workers: int = 2, executor: str = "local",
                    address: str | None = None, progress: bool = True, report: bool = True) -> MnistStudyResult:
    """Sweep a preset grid (resuming if run before), analyse it, write JSON (and the report) to ``out``."""
    from scalinglab.provenance import code_version, library_versions
    from scalinglab.sweep.peak import machine_peak

    grid = MnistGrid.from_dict({**preset(preset_name).to_dict(), **(overrides or {})})
    name = f"mnist-{preset_name}" if not overrides else grid_name(grid)
    out = Path(out or f"study-{preset_name}")
    start = time.perf_counter()
    summary = sweep_mnist(grid, db=db, name=name, workers=workers, executor=executor, address=address,
                          progress=progress)
    peak = machine_peak().for_precision(grid.precision)
    info = {"preset": preset_name, "grid": grid.to_dict(), "workers": workers, "executor": executor,
            "code_version": code_version(), "versions": library_versions(), "cpus": os.cpu_count(),
            "sweep_wall_s": summary.wall_s, "sweep_gflops_per_s": summary.gflops_per_s,
            "peak_gflops": peak, "pct_of_peak": 100 * summary.gflops_per_s / peak}
    with RunStore(db) as store:
        runs = store.runs(study=name)
        analyses = analyse_mnist(runs)
        info["total_wall_s"] = time.perf_counter() - start
        store.update_study_info(name, **info)
    result = MnistStudyResult(study=name, db=str(db), out=out, sweep=summary, analyses=analyses, info=info)
    out.mkdir(parents=True, exist_ok=True)
    (out / "analysis.json").write_text(json.dumps(result.to_dict(), indent=1, default=float))
    if report:
        from scalinglab.report import write_study_report

        write_study_report(db=db, study=name, out=out, analyses=analyses)
    return result
