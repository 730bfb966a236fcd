"""Draw a fit for ``scalinglab fit --plot``: data from the FitResult, pixels from matplotlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scalinglab.errors import DataError
from scalinglab.fit.result import FitResult


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


def _optimal_curve(res: FitResult, cg: np.ndarray) -> np.ndarray | None:
    """Loss along the law's compute-optimal allocation on ``cg`` (Chinchilla, Kaplan), else None."""
    from scalinglab.fit.fitting import LAWS, Settings
    spec = LAWS[res.law]
    d = spec.derived({k: np.asarray([v]) for k, v in res.params.items()}, Settings(at_flops=tuple(cg)))
    loss = [d.get(f"loss@{c:.15g}") for c in cg]
    return None if any(v is None for v in loss) else np.concatenate(loss)


def _draw(ax, res: FitResult, color, label: str = "") -> None:
    """One fit's runs and curve on ``ax`` (the left panel of its single plot)."""
    runs = res.runs
    if res.law == "isoflop":
        prof = res.tables["profiles"]
        ok = prof["N_opt"].notna()
        ax.scatter(prof.loc[ok, "C"], prof.loc[ok, "N_opt"], color=color, s=18)
        if np.isfinite(res.derived.get("a", np.nan)):
            cg = _cgrid(prof["C"].to_numpy(float))
            ax.plot(cg, res.params["N_coef"] * cg ** res.derived["a"], color=color,
                    label=f"{label}N_opt ∝ C^{res.derived['a']:.3f}")
        ax.set(xscale="log", yscale="log", xlabel="training FLOPs C", ylabel="N_opt")
        return
    if res.law == "approach1":
        pts = res.tables["frontier"]
        ax.scatter(pts["C"], pts["N_opt"], color=color, s=18)
        cg = _cgrid(pts["C"].to_numpy(float))
        ax.plot(cg, res.params["N_coef"] * cg ** res.derived["a"], color=color,
                label=f"{label}N_opt ∝ C^{res.derived['a']:.3f}")
        ax.set(xscale="log", yscale="log", xlabel="training FLOPs C", ylabel="N_opt (frontier runs)")
        return
    x = res.method.get("x", "C")
    xs = runs[x].to_numpy(float)
    ax.scatter(xs, runs["loss"], s=8, color=color, alpha=0.35)
    grid = _cgrid(xs)
    if res.law in ("power", "broken_power", "frontier"):
        if res.law == "frontier":
            ax.scatter(res.tables["frontier"]["C"], res.tables["frontier"]["loss"], s=18, color=color)
        curve = res.estimator.predict(grid)
        text = f"α={res.params['alpha']:.3f}, E={res.params['E']:.3f}"
    else:
        curve = _optimal_curve(res, grid)
        text = "compute-optimal L(C)"
    if curve is not None:
        ax.plot(grid, curve, color=color, label=f"{label}{text}")
    ax.set(xscale="log", xlabel=f"{x}" if x != "C" else "training FLOPs C", ylabel="loss")


def plot_fit(res: FitResult, path) -> Path:
    """PNG of one fit against its runs (IsoFLOP: profiles and N_opt; N, D laws: also a parity panel)."""
    if not isinstance(res, FitResult):
        raise DataError(f"cannot plot a {type(res).__name__}; pass a FitResult")
    two = res.law in ("isoflop", "chinchilla", "kaplan")
    plt, fig, axes = _figure(2 if two else 1)
    if res.law == "isoflop":
        _profiles_panel(axes[0], res)
        _draw(axes[1], res, "k")
        axes[1].set_title("optimal size")
    else:
        _draw(axes[0], res, "C0")
        axes[0].set_title(f"{res.law} fit")
    if res.law in ("chinchilla", "kaplan"):
        runs = res.runs
        pred = res.estimator.predict(runs)
        lim = [min(pred.min(), runs["loss"].min()), max(pred.max(), runs["loss"].max())]
        axes[1].scatter(runs["loss"], pred, s=10)
        axes[1].plot(lim, lim, "k--", lw=1)
        axes[1].set(xlabel="measured loss", ylabel="predicted loss", title="parity")
    if res.backtest is not None and res.law != "isoflop":
        axes[0].axvline(res.backtest["holdout_above"], color="C1", ls=":", label="back-test split")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return _save(plt, fig, path)


def _profiles_panel(ax, res: FitResult) -> None:
    runs, prof = res.runs, res.tables["profiles"]
    budgets = prof["C"].to_numpy(float)
    which = np.searchsorted(budgets, runs["_budget"].to_numpy(float))
    for i, row in prof.iterrows():
        sel = runs[which == i]
        color = f"C{i % 10}"
        ax.scatter(sel["N"], sel["loss"], s=10, color=color)
        if not np.isfinite(row["N_opt"]):
            continue
        if np.isfinite(row["curvature"]):
            ng = np.logspace(np.log10(row["N_min_sampled"]), np.log10(row["N_max_sampled"]), 50)
            ax.plot(ng, row["loss_opt"] + row["curvature"] * (np.log(ng) - np.log(row["N_opt"])) ** 2,
                    color=color, lw=1)
        else:                                   # the Akima spline the minimum was read from
            from scipy.interpolate import Akima1DInterpolator
            mean = sel.groupby("N")["loss"].mean()
            ln = np.log(mean.index.to_numpy(float))
            grid = np.linspace(ln[0], ln[-1], 100)
            ax.plot(np.exp(grid), Akima1DInterpolator(ln, mean.to_numpy(), method="akima")(grid), color=color, lw=1)
        ax.scatter([row["N_opt"]], [row["loss_opt"]], marker="x" if row["inside"] else "o", color=color, s=40)
    ax.set(xscale="log", xlabel="parameters N", ylabel="loss",
           title=f"IsoFLOP profiles ({res.method.get('isoflop_method')}; x: minimum)")


def plot_groups(results: dict, path, *, title: str = "") -> Path:
    """PNG of one fit per group, one colour per group."""
    plt, fig, (ax,) = _figure(1)
    for i, (value, res) in enumerate(results.items()):
        _draw(ax, res, f"C{i % 10}", label=f"{value}: ")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)

