"""Draw a fit for ``scalinglab fit --plot``: data from the fit objects, pixels from matplotlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.errors import DataError
from scalinglab.fit.allocate import KaplanLaw
from scalinglab.fit.frontier import FrontierFit
from scalinglab.fit.isoflop import IsoFlopResult
from scalinglab.fit.parametric import ChinchillaFit, KaplanFit, PowerLawFit


def _figure(ncols: int):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 4.2), squeeze=False)
    return plt, fig, axes[0]


def _save(plt, fig, path) -> Path:
    path = Path(path)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot write plot {path}: {exc}") from None
    finally:
        plt.close(fig)
    return path


def _cgrid(c: np.ndarray, n: int = 200) -> np.ndarray:
    return np.logspace(np.log10(c.min()) - 0.3, np.log10(c.max()) + 0.5, n)


def plot_fit(fit, runs: pd.DataFrame, path, *, holdout_above: float | None = None) -> Path:
    """PNG of a fitted law (or IsoFLOP result) against its runs; returns the path."""
    if isinstance(fit, IsoFlopResult):
        return _plot_isoflop(fit, runs, path)
    if isinstance(fit, FrontierFit):
        plt, fig, (ax,) = _figure(1)
        ax.scatter(runs["C"], runs["loss"], s=10, c="0.7", label="runs")
        ax.scatter(fit.frontier_["C"], fit.frontier_["loss"], s=18, c="C3", label="frontier")
        cg = _cgrid(runs["C"].to_numpy(float))
        ax.plot(cg, fit.predict(cg), "k-", label=f"E + A C^-α, α={fit.alpha_:.3f}, E={fit.E_:.3f}")
        ax.set(xscale="log", xlabel="training FLOPs C", ylabel="loss", title="compute frontier")
    elif isinstance(fit, PowerLawFit):
        plt, fig, (ax,) = _figure(1)
        x = runs[fit.x].to_numpy(float)
        ax.scatter(x, runs["loss"], s=10, c="C0", label="runs")
        xg = _cgrid(x)
        ax.plot(xg, fit.predict(xg), "k-", label=f"E + A x^-α, α={fit.alpha_:.3f}, E={fit.E_:.3f}")
        ax.set(xscale="log", xlabel=fit.x, ylabel="loss", title="power law")
    elif isinstance(fit, (ChinchillaFit, KaplanFit)):
        plt, fig, (ax1, ax2) = _figure(2)
        pred = fit.predict(runs)
        sc = ax1.scatter(runs["C"], runs["loss"], s=10, c=np.log10(runs["N"]), cmap="viridis")
        fig.colorbar(sc, ax=ax1, label="log10 N")
        cg = _cgrid(runs["C"].to_numpy(float))
        if isinstance(fit, ChinchillaFit):
            opt = fit.compute_optimal(cg)
            n_opt, d_opt = opt["N_opt"].to_numpy(), opt["D_opt"].to_numpy()
        else:
            law = KaplanLaw(**fit.params_)
            n_opt, d_opt = np.array([law.compute_optimal(c) for c in cg]).T
        ax1.plot(cg, fit.predict(np.column_stack([n_opt, d_opt])), "k-", label="compute-optimal L(C)")
        ax1.set(xscale="log", xlabel="training FLOPs C", ylabel="loss", title=f"{fit.law} fit")
        lim = [min(pred.min(), runs["loss"].min()), max(pred.max(), runs["loss"].max())]
        ax2.scatter(runs["loss"], pred, s=10)
        ax2.plot(lim, lim, "k--", lw=1)
        ax2.set(xlabel="measured loss", ylabel="predicted loss", title="parity")
        ax = ax1
    else:
        raise DataError(f"cannot plot a {type(fit).__name__}")
    if holdout_above is not None:
        ax.axvline(holdout_above, color="C1", ls=":", label="back-test split")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def _plot_isoflop(result: IsoFlopResult, runs: pd.DataFrame, path) -> Path:
    plt, fig, (ax1, ax2) = _figure(2)
    prof = result.profiles
    for i, row in prof.iterrows():
        sel = runs[result.run_profile == i]
        ax1.scatter(sel["N"], sel["loss"], s=10, color=f"C{i % 10}")
        if np.isfinite(row["N_opt"]):
            ng = np.logspace(np.log10(row["N_min_sampled"]), np.log10(row["N_max_sampled"]), 50)
            parabola = row["loss_opt"] + row["curvature"] * (np.log(ng) - np.log(row["N_opt"])) ** 2
            ax1.plot(ng, parabola, color=f"C{i % 10}", lw=1)
            ax1.scatter([row["N_opt"]], [row["loss_opt"]], marker="x" if row["inside"] else "o",
                        color=f"C{i % 10}", s=40)
    ax1.set(xscale="log", xlabel="parameters N", ylabel="loss", title="IsoFLOP profiles (x: minimum)")
    ok = prof["N_opt"].notna()
    ax2.scatter(prof.loc[ok, "C"], prof.loc[ok, "N_opt"], c=np.where(prof.loc[ok, "inside"], "C0", "C3"))
    if np.isfinite(result.a):
        cg = _cgrid(prof["C"].to_numpy(float))
        ax2.plot(cg, result.n_opt(cg), "k-", label=f"N_opt ∝ C^{result.a:.3f}")
        ax2.legend(fontsize=8)
    ax2.set(xscale="log", yscale="log", xlabel="training FLOPs C", ylabel="N_opt", title="optimal size")
    return _save(plt, fig, path)
