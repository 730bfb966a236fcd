"""The MNIST CNN study's own report figures: learning-rate choices and the effect of dropout.

``report_extras(study, analysis)`` is the family's report hook (see
:mod:`scalinglab.report.build`); the generic figures (loss and accuracy
frontiers, Approaches 1 to 3, curves) come from the report itself. Imports
neither torch nor the training code.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from scalinglab.report.build import Missing
from scalinglab.report.chart import FRONTIER_COLOR, Chart, Panel, Series, group_colors, palette, values
from scalinglab.report.figures import compute_grid, law_curve, point_tip
from scalinglab.studies.analysis import fmt_interval, variant_text

AXES = ("width", "fraction", "dropout")  # an MNIST setting (lr is tuned per setting)


def fmt_fraction(f: float) -> str:
    """1, 1/2, 1/4 ... for the exercise's halvings; else 3 significant figures."""
    if f == 1:
        return "1"
    inv = 1.0 / f
    return f"1/{int(round(inv))}" if abs(inv - round(inv)) < 1e-9 else f"{f:.3g}"


@dataclass(frozen=True)
class LrFigure:
    """Learning-rate choices: loss vs LR per width at the largest data fraction, and the chosen LR per width."""

    by_lr: pd.DataFrame  # width, fraction, dropout, lr, loss (seed mean), loss_sd, n_seeds
    chosen: pd.DataFrame  # width, fraction, dropout, lr: the LR each setting kept (the points' lr)
    key: str = "lr-choices"

    def chart(self) -> Chart:
        widths = palette(self.by_lr["width"].unique(), "viridis", 0.0, 0.9)
        fractions = palette(self.by_lr["fraction"].unique(), "plasma", 0.05, 0.8)
        several = self.by_lr["dropout"].nunique() > 1
        panels = []
        for drop, g in self.by_lr.groupby("dropout"):
            tag = f" (dropout {drop:g})" if several else ""
            top = g["fraction"].max()
            g = g[g["fraction"] == top].sort_values("lr")
            ch = self.chosen[(self.chosen["dropout"] == drop) & (self.chosen["fraction"] == top)]
            series = []
            for w, gw in g.groupby("width"):
                series.append(Series(f"width {w}", values(gw["lr"]), values(gw["loss"]), kind="line", color=widths[w]))
                series.append(Series(f"width {w}", values(gw["lr"]), values(gw["loss"]), color=widths[w], legend=False,
                                     tips=tuple(f"width {w}, lr {r['lr']:g}\nloss {r['loss']:.4f} "
                                                f"({int(r['n_seeds'])} seeds)" for _, r in gw.iterrows())))
            best = g.merge(ch[["width", "lr"]], on=["width", "lr"])
            series.append(Series("chosen LR", values(best["lr"]), values(best["loss"]), color=FRONTIER_COLOR,
                                 hollow=True, size=1.8))
            panels.append(Panel(f"Loss vs base LR at fraction {fmt_fraction(top)}{tag}", "base learning rate",
                                "validation loss", tuple(series)))
            chosen = self.chosen[self.chosen["dropout"] == drop].sort_values("width")
            lines = [Series(f"fraction {fmt_fraction(f)}", values(c["width"]), values(c["lr"]), kind="line",
                            color=fractions[f], size=0.9) for f, c in chosen.groupby("fraction")]
            lines += [Series(f"fraction {fmt_fraction(f)}", values(c["width"]), values(c["lr"]), color=fractions[f],
                             legend=False, tips=tuple(f"width {r['width']}, fraction {fmt_fraction(r['fraction'])}\n"
                                                      f"chosen lr {r['lr']:g}" for _, r in c.iterrows()))
                      for f, c in chosen.groupby("fraction")]
            panels.append(Panel(f"Chosen base LR per width{tag}", "width", "chosen base LR", tuple(lines)))
        return Chart(self.key, "Learning-rate choices", "Which learning rate won at each width, and does the "
                     "1/√fan-in rule make it width-independent?", tuple(panels), columns=2,
                     notes=("Each layer's Adam LR is the base LR / √fan-in. If that rule transfers across widths, "
                            "the chosen base LR is flat in width. Per (width, fraction, dropout) the LR with the "
                            "lowest seed-mean validation loss was kept for every other figure.",))


def lr_choices(study, analysis) -> LrFigure | Missing:
    """The LR figure, or why it is missing (one LR per setting)."""
    runs = study.runs[study.runs["status"] == "complete"]
    if "lr" not in analysis.tuned:
        lrs = ", ".join(f"{v:g}" for v in sorted(runs["lr"].unique()))
        return Missing("lr-choices", f"one learning rate per setting (base LR {lrs}, layer LR = base / √fan-in); "
                                     "run with --lr tune to compare several")
    by_lr = runs.groupby([*AXES, "lr"]).agg(loss=("val_loss", "mean"), loss_sd=("val_loss", "std"),
                                            n_seeds=("seed", "nunique")).reset_index()
    return LrFigure(by_lr, study.points[[*AXES, "lr"]].drop_duplicates().reset_index(drop=True))


@dataclass(frozen=True)
class DropoutFigure:
    """Dropout against none: the frontiers and their laws together, and the loss ratio per setting."""

    frontiers: list[tuple[str, pd.DataFrame, object | None, pd.DataFrame | None]]  # label, frontier, fit, curve
    ratio: pd.DataFrame  # width, fraction, N, D, C, dropout, loss, base_loss, ratio (loss / loss without dropout)
    joint: str = ""  # the joint fit with shared exponents, in words (analysis.variant_text; the variants figure)
    key: str = "dropout-effect"

    def chart(self) -> Chart:
        colors = group_colors(label for label, *_ in self.frontiers)
        left = []
        for label, front, fit, curve in self.frontiers:
            left.append(Series(label, values(front["C"]), values(front["loss"]), color=colors[label],
                               tips=tuple(point_tip(r) for _, r in front.iterrows())))
            if fit is not None:
                left.append(Series(f"{label}: α = {fmt_interval(fit.intervals['alpha'])}", values(curve["C"]),
                                   values(curve["loss"]), kind="line", color=colors[label], size=1.4))
        fractions = palette(self.ratio["fraction"].unique(), "plasma", 0.05, 0.8)
        right = []
        for (drop, f), g in self.ratio.sort_values("N").groupby(["dropout", "fraction"]):
            name = f"fraction {fmt_fraction(f)}" + (f", dropout {drop:g}" if self.ratio["dropout"].nunique() > 1 else "")
            right.append(Series(name, values(g["N"]), values(g["ratio"]), kind="line", color=fractions[f]))
            right.append(Series(name, values(g["N"]), values(g["ratio"]), color=fractions[f], legend=False,
                                tips=tuple(f"width {r['width']}, fraction {fmt_fraction(r['fraction'])}\n"
                                           f"loss {r['loss']:.4f} vs {r['base_loss']:.4f} without dropout"
                                           for _, r in g.iterrows())))
        right.append(Series("no change", values([self.ratio["N"].min(), self.ratio["N"].max()]), (1.0, 1.0),
                            kind="line", color="#888888", dash=True, legend=False))
        return Chart(self.key, "Dropout against none", "Does dropout move the compute-efficient frontier, and for "
                     "which model and data sizes does it help?",
                     (Panel("Compute-efficient frontiers", "training compute C (FLOPs)", "validation loss",
                            tuple(left)),
                      Panel("Loss with dropout / loss without, per setting", "parameters N", "loss ratio",
                            tuple(right), ylog=False)), columns=2,
                     notes=("Left: each dropout setting's frontier and its fitted law (the same fits as the loss "
                            "figure). Right: below 1, dropout helped that (width, fraction) setting; one epoch of "
                            "training leaves little overfitting for it to cure except at small data fractions.",
                            *((self.joint + " (the variants figure draws it)",) if self.joint else ())))


def dropout_effect(study, analysis) -> DropoutFigure | Missing:
    if len(analysis.groups) < 2 or "dropout" not in analysis.groups[0].variant:
        return Missing("dropout-effect", "the study ran one dropout setting; add --dropout 0 0.2 to compare")
    from scalinglab.fit.frontier import compute_frontier

    frontiers = []
    for g in analysis.groups:
        fit = g.fits.get("frontier")
        frontiers.append((g.label, compute_frontier(g.points), fit,
                          None if fit is None else law_curve(fit, compute_grid(g.points["C"]))))
    base, *others = analysis.groups
    keys = ["width", "fraction"]
    ref = base.points[[*keys, "loss"]].rename(columns={"loss": "base_loss"})
    ratio = pd.concat([o.points.merge(ref, on=keys) for o in others], ignore_index=True)
    ratio["ratio"] = ratio["loss"] / ratio["base_loss"]
    return DropoutFigure(frontiers, ratio[[*keys, "N", "D", "C", "dropout", "loss", "base_loss", "ratio"]],
                         variant_text(analysis))


def report_extras(study, analysis) -> list:
    """MNIST's figures beyond the generic ones (the family's report hook)."""
    return [lr_choices(study, analysis), dropout_effect(study, analysis)]

