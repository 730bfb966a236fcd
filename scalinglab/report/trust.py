"""The report's figures on how far to trust an extrapolation: which law, how wide, and variants as compute.

* ``law-selection``: each candidate law's back-test error per rolling split
  (:func:`scalinglab.fit.select.compare_laws`, as the analysis ran it), the
  chosen law and why, and the held-out settings against the chosen law's
  mean-law and new-run intervals (:func:`scalinglab.studies.analysis.holdout_coverage`).
* ``variants``: a study with one variant key (MNIST's dropout) as one joint
  fit with shared exponents: each variant's compute multiplier k with its
  interval, the frontier losses of the joint fit, and the exponent-difference
  test (:func:`scalinglab.fit.variants.fit_variants`).

Like :mod:`.figures`, nothing is fitted here: every number is read off the analysis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalinglab.report.chart import (
    FIT_COLOR,
    FRONTIER_COLOR,
    GREY,
    Chart,
    Panel,
    Series,
    Table,
    group_colors,
    palette,
    values,
)
from scalinglab.studies.analysis import (
    LAW_CAPTION,
    LAW_LEVELS,
    StudyAnalysis,
    fmt_dec,
    fmt_num,
    law_selection_rows,
    variant_label,
)


# ===================================================================== law selection

@dataclass(frozen=True)
class LawPanelData:
    label: str
    comparison: object  # scalinglab.fit.select.LawComparison
    coverage: dict | None  # GroupAnalysis.holdout_coverage


@dataclass(frozen=True)
class LawSelectionFigure:
    """Per group: each law's back-test error per rolling split; the held-out settings in the chosen law's intervals."""

    panels: list[LawPanelData]
    rows: tuple[tuple[str, ...], ...]  # the summary's per-law table
    several: bool
    key: str = "law-selection"

    def chart(self) -> Chart:
        panels, notes, held = [], [], []
        for p in self.panels:
            tag = f" ({p.label})" if self.several else ""
            sel = p.comparison
            colors = palette(sel.table.index, "tab10", 0.0, 0.9)
            errs = sel.errors[sel.errors["status"] == "ok"]
            series = []
            for law, g in errs.groupby("law", sort=False):
                chosen = law == sel.chosen
                name = f"{law} (chosen)" if chosen else law
                series.append(Series(name, values(g["max_train_C"]), values(g[sel.metric]), kind="line",
                                     color=colors[law], size=2.2 if chosen else 1.0))
                series.append(Series(name, values(g["max_train_C"]), values(g[sel.metric]), color=colors[law],
                                     legend=False, marker="d" if chosen else "o",
                                     tips=tuple(f"{law}: fitted on {int(r['n_train'])} settings up to "
                                                f"{fmt_num(r['max_train_C'])} FLOPs, predicts {int(r['n_test'])}\n"
                                                f"RMS log error {fmt_num(r['rmse_log'])}, mean |error| "
                                                f"{100 * r['mean_abs_rel_error']:.1f}%" for _, r in g.iterrows())))
            panels.append(Panel(f"Back-test error per split{tag}", "largest training compute of the split (FLOPs)",
                                "RMS log error on the larger settings", tuple(series)))
            notes.append(f"{p.label}: {sel.reason}." if self.several else f"{sel.reason}.")
            cov = p.coverage
            if cov is None:
                continue
            t = pd.DataFrame(cov["table"])
            lvl = round(100 * cov["level"])
            cover = [Series("measured (seed mean)", values(t["C"]), values(t["loss"]), color=FRONTIER_COLOR,
                            tips=tuple(f"{r['run']}\nmeasured {r['loss']:.4f}" for _, r in t.iterrows())),
                     Series(f"{lvl}% interval for one new run", values(t["C"] * 1.04), values(t["predicted"]),
                            color=GREY, lo=values(t["new_run_lo"]), hi=values(t["new_run_hi"]), marker="s", size=0.8),
                     Series(f"predicted, {lvl}% mean-law interval", values(t["C"] * 0.96), values(t["predicted"]),
                            color=FIT_COLOR, lo=values(t["mean_lo"]), hi=values(t["mean_hi"]), marker="d",
                            tips=tuple(f"{r['run']}\npredicted {r['predicted']:.4f}\nmean law {r['mean_lo']:.4f} to "
                                       f"{r['mean_hi']:.4f}\none new run {r['new_run_lo']:.4f} to "
                                       f"{r['new_run_hi']:.4f}" for _, r in t.iterrows()))]
            runs = (f"; {cov['runs_inside']}/{cov['runs_total']} single runs in the new-run interval"
                    if cov["runs_total"] else "")
            law = cov["law"] + (f"_{cov['x']}" if cov["x"] else "")
            panels.append(Panel(f"Held-out settings, {law} fitted up to {fmt_num(cov['holdout_above'], 2)} "
                                f"FLOPs{tag}", "training compute C (FLOPs)", "validation loss", tuple(cover),
                                note=f"{cov['mean_inside']}/{cov['n_test']} seed means in the mean-law interval{runs}"))
            held += [(p.label, str(r["run"]), f"{r['loss']:.4f}", f"{r['predicted']:.4f}",
                      f"{r['mean_lo']:.4f} to {r['mean_hi']:.4f}", f"{r['new_run_lo']:.4f} to {r['new_run_hi']:.4f}",
                      str(r.get("runs_in_new_run", "—"))) for r in cov["table"]]
        tables = [Table(LAW_CAPTION, ("group", "law", "params", "splits", "RMS log error", "mean |error|",
                                      "in-sample RMS log"), self.rows)]
        if held:
            tables.append(Table("Held-out settings against the chosen law's intervals (fitted on the cheaper ones)",
                                ("group", "setting", "measured", "predicted", "mean law", "one new run",
                                 "single runs inside"), tuple(held)))
        notes.append(f"Each law (scalinglab.fit.select) is fitted on the settings of the k smallest of {LAW_LEVELS} "
                     "compute levels and predicts the larger ones, for every k; the lowest mean error wins, a law "
                     "with fewer parameters where the difference is within the runs' own scatter. In-sample fit "
                     "never chooses. The right panels refit the chosen law on the cheaper settings (the Chinchilla "
                     "back-test's split) and check the costlier ones against its intervals for the mean law and for "
                     "one new run (scalinglab.fit.noise).")
        return Chart(self.key, "Which law extrapolates best", "Fitted on the cheaper runs, which law predicts the "
                     "costlier ones, and do its intervals cover them?", tuple(panels), columns=2,
                     notes=tuple(notes), tables=tuple(tables))


def law_selection_figure(sa: StudyAnalysis) -> LawSelectionFigure | None:
    panels = [LawPanelData(g.label, g.law_selection, g.holdout_coverage) for g in sa.groups
              if g.law_selection is not None]
    if not panels:
        return None
    return LawSelectionFigure(panels, law_selection_rows(sa), len(sa.groups) > 1)


# ===================================================================== variants

@dataclass(frozen=True)
class VariantsFigure:
    """The joint fit over the variant key: compute multipliers, frontier losses, exponent differences."""

    comparison: object  # scalinglab.fit.variants.VariantComparison
    frontiers: dict  # variant value -> the group's compute-efficient frontier settings (C, loss)
    key: str = "variants"

    def chart(self) -> Chart:
        from scalinglab.fit.variants import frontier_loss

        v = self.comparison
        t = v.table
        name = [variant_label({v.variant: x}) for x in t["variant"]]
        colors = group_colors(name)
        lvl = round(100 * v.level)
        pos = np.arange(len(t), dtype=float)
        mult = [Series(f"k, {lvl}% interval", values(pos), values(t["k"]), color=FIT_COLOR, marker="d", size=1.3,
                       lo=values(t["k_lo"]), hi=values(t["k_hi"]),
                       tips=tuple(f"{n}: worth {r['k']:.3g}× the compute of the reference\n{lvl}% interval "
                                  f"{r['k_lo']:.3g} to {r['k_hi']:.3g}" for n, (_, r) in zip(name, t.iterrows()))),
                Series("no effect (k = 1)", (pos[0] - 0.3, pos[-1] + 0.3), (1.0, 1.0), kind="line", color=GREY,
                       dash=True, legend=False)]
        own = [c for c in t.columns if c not in ("variant", "n_runs", "k", "k_lo", "k_hi", "exponent_p")
               and not c.endswith(("_alone", "_lo", "_hi")) and not c.startswith("d_")]
        x = v.multiplier_of
        grid = np.geomspace(min(f[x].min() for f in self.frontiers.values()),
                            max(f[x].max() for f in self.frontiers.values()), 60)
        front = []
        for n, (_, r) in zip(name, t.iterrows()):
            f = self.frontiers.get(r["variant"])
            if f is not None:
                front.append(Series(n, values(f[x]), values(f["loss"]), color=colors[n],
                                    tips=tuple(f"{n}: {s['run']}\nloss {s['loss']:.4f}" for _, s in f.iterrows())))
            p = {**{k: np.array([q]) for k, q in v.shared.items()}, **{k: np.array([r[k]]) for k in own}}
            front.append(Series(n, values(grid), values(frontier_loss(v.law, p, grid)), kind="line", color=colors[n],
                                legend=False))
        exps = [c[2:] for c in t.columns if c.startswith("d_") and not c.endswith(("_lo", "_hi"))]
        others = t[t["variant"] != v.reference]
        diff = []
        for j, e in enumerate(exps):
            at = pos[1:len(others) + 1] + 0.1 * (j - (len(exps) - 1) / 2)
            diff.append(Series(f"Δ{e} (alone)", values(at), values(others[f"d_{e}"]), color=palette(exps, "Dark2")[e],
                               lo=values(others[f"d_{e}_lo"]), hi=values(others[f"d_{e}_hi"]),
                               tips=tuple(f"{variant_label({v.variant: r['variant']})}: Δ{e} = {fmt_dec(r[f'd_{e}'])} "
                                          f"[{fmt_dec(r[f'd_{e}_lo'])}, {fmt_dec(r[f'd_{e}_hi'])}]\nbootstrap p = "
                                          f"{r['exponent_p']:.2g}" for _, r in others.iterrows())))
        diff.append(Series("no difference", (pos[0], pos[-1] + 0.3), (0.0, 0.0), kind="line", color=GREY, dash=True,
                           legend=False))
        rows = tuple((n, str(int(r["n_runs"])), f"{r['k']:.3g}", f"{r['k_lo']:.3g} to {r['k_hi']:.3g}",
                      *(f"{fmt_dec(r[f'd_{e}'])} [{fmt_dec(r[f'd_{e}_lo'])}, {fmt_dec(r[f'd_{e}_hi'])}]"
                        if r["variant"] != v.reference else "reference" for e in exps),
                      "—" if r["variant"] == v.reference else f"{r['exponent_p']:.2g}")
                     for n, (_, r) in zip(name, t.iterrows()))
        where = "along the compute-optimal frontier, C = 6ND" if v.law != "power" else f"in {v.multiplier_of}"
        ref = variant_label({v.variant: v.reference})
        panels = (Panel(f"Compute multiplier against {ref}", f"{v.variant} (position)", "k (effective compute)",
                        tuple(mult), xlog=False),
                  Panel(f"Frontier of the joint {v.law} fit",
                        "compute 6ND (FLOPs)" if v.law != "power" else v.multiplier_of, "validation loss", tuple(front)),
                  Panel("Exponent differences, each variant fitted alone", f"{v.variant} (position)",
                        "difference from the reference", tuple(diff), xlog=False, ylog=False))
        return Chart(self.key, f"Variants of {v.variant} as effective compute",
                     f"How much compute is a change of {v.variant} worth, and does it change the exponents?",
                     panels, columns=3,
                     tables=(Table(f"Joint {v.law} fit, exponents and E shared: shared "
                                   + ", ".join(f"{k} = {fmt_num(x, 4)}" for k, x in v.shared.items()),
                                   ("variant", "settings", "k", f"{lvl}% interval", *(f"Δ{e}" for e in exps),
                                    "exponents differ? p"), rows),),
                     notes=(f"One fit of the {v.law} law with the exponents and E shared by every {v.variant} value and "
                            f"each value's coefficients free (scalinglab.fit.variants.fit_variants, `scalinglab fit "
                            f"--law {v.law} --variant {v.variant}`). k: L_variant(C) = L_reference(k·C) {where}; below "
                            f"1 the variant costs compute. Intervals from {v.n_resamples} resamples of configurations "
                            "drawn within each variant. The exponent test refits each variant alone on the same kind "
                            "of resamples: p is the two-sided bootstrap p-value of the differences (Bonferroni over "
                            "the exponents). Middle: each group's compute-efficient settings and the joint fit's frontier "
                            "losses, against the compute the multiplier is measured in.",))


def variants_figure(sa: StudyAnalysis) -> VariantsFigure | None:
    v = sa.variants
    if v is None:
        return None
    from scalinglab.fit.frontier import compute_frontier

    def frontier(pts):
        if v.law == "power":
            return compute_frontier(pts.assign(C=pts[v.multiplier_of]))
        return compute_frontier(pts.assign(C=6.0 * pts["N"] * pts["D"]))

    frontiers = {g.variant[v.variant]: frontier(g.points) for g in sa.groups if v.variant in g.variant}
    return VariantsFigure(v, frontiers)


# ===================================================================== adaptive rounds

@dataclass(frozen=True)
class AdaptiveRoundsFigure:
    """An adaptive study's rounds: the interval of its question after each round against the FLOPs spent."""

    settings: dict  # question, target_flops, budget_flops, ... as the study recorded them
    rounds: tuple[dict, ...]  # the study info's "adaptive" rounds (scalinglab.studies.adaptive)
    stopped: str
    key: str = "adaptive-rounds"

    def chart(self) -> Chart:
        done = [r for r in self.rounds if r.get("status") == "done" and r.get("width") is not None]
        x = values([r["spent_flops"] for r in done])
        question = self.settings.get("question", "the answer")
        series = [Series("interval width after the round", x, values([r["width"] for r in done]), kind="line",
                         color=FIT_COLOR),
                  Series("interval width after the round", x, values([r["width"] for r in done]), color=FIT_COLOR,
                         legend=False, tips=tuple(f"round {r['round']}: {len(r['runs'])} runs, {fmt_num(r['flops'])} "
                                                  f"FLOPs\n{question} = {fmt_num(r['estimate'])} [{fmt_num(r['lo'])}, "
                                                  f"{fmt_num(r['hi'])}]\n{r['why']}" for r in done))]
        planned = [r for r in done if r.get("expected_width") is not None]
        if planned:
            series.append(Series("width the planner expected", values([r["spent_flops"] for r in planned]),
                                 values([r["expected_width"] for r in planned]), color=GREY, marker="s", hollow=True))
        estimate = [Series(f"{question} with its interval", x, values([r["estimate"] for r in done]),
                           color=FRONTIER_COLOR, lo=values([r["lo"] for r in done]), hi=values([r["hi"] for r in done]))]
        rows = tuple((str(r["round"]), str(len(r["runs"])), fmt_num(r["flops"]), fmt_num(r["spent_flops"]),
                      f"{fmt_num(r['estimate'])} [{fmt_num(r['lo'])}, {fmt_num(r['hi'])}]", fmt_num(r["width"]),
                      str(r["why"])) for r in done)
        panels = (Panel("Interval width against compute spent", "FLOPs spent so far", f"width of the {question} "
                        "interval", tuple(series), ylog=False),
                  Panel(f"Estimate of {question} after each round", "FLOPs spent so far", str(question),
                        tuple(estimate), ylog=False))
        table = Table("Rounds: the runs each one added, why, and the interval after it",
                      ("round", "runs", "FLOPs", "spent", "estimate [interval]", "width", "why"), rows)
        notes = (f"Stopped: {self.stopped}." if self.stopped else "The study has not stopped yet.",
                 "Each round's runs were chosen by scalinglab.studies.plan for the largest expected narrowing of "
                 "the interval per FLOP (docs/planning.md).")
        return Chart(self.key, "Adaptive rounds", f"How fast did the interval of {question} shrink as the study "
                     "chose its runs?", panels, columns=2, notes=notes, tables=(table,))


def adaptive_rounds_figure(info: dict) -> AdaptiveRoundsFigure | None:
    """The figure of an adaptive study's recorded rounds; None for a study with a fixed design."""
    adaptive = info.get("adaptive") or {}
    rounds = tuple(adaptive.get("rounds") or ())
    if not any(r.get("status") == "done" for r in rounds):
        return None
    return AdaptiveRoundsFigure(dict(adaptive.get("settings") or {}), rounds, str(adaptive.get("stopped") or ""))
