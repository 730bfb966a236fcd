"""The study report: every question of the exercise answered in figures.

    from scalinglab.report import build_report, write_study_report
    report = build_report("runs.db")                 # analyses + every figure's data, no drawing
    report.figure("loss-compute").panels[0].frontier  # the numbers behind a figure
    report.figure("loss-compute").chart().plot()      # a matplotlib Figure (notebooks)
    write_study_report(db="runs.db", study=None, out="report/")   # report.html + figures/*.png|svg

Figure data is computed in :mod:`.figures` from the library's own analysis
calls; :mod:`.html` draws it as inline SVG in one self-contained page and
:mod:`.static` draws the same charts with matplotlib. docs/report.md says
what each figure answers.
"""

from __future__ import annotations

import json
from pathlib import Path

from scalinglab.report.figures import (
    AccuracyFigure,
    Chart,
    ChinchillaFigure,
    ComputeOptimalFigure,
    CurvesFigure,
    IsoFlopFigure,
    KaplanViewsFigure,
    LossComputeFigure,
    LrFigure,
    Panel,
    Provenance,
    Series,
    StudyAnalysis,
    StudyReport,
    Summary,
    Table,
    accuracy_vs_compute,
    analyse_study,
    build_report,
    chinchilla_figure,
    compute_optimal_sizes,
    exponent_table,
    isoflop_figure,
    kaplan_views,
    loss_vs_compute,
    lr_choices,
    report_from_analysis,
    resolve_study,
    study_provenance,
    study_summary,
    training_curves,
)

__all__ = [
    "AccuracyFigure", "Chart", "ChinchillaFigure", "ComputeOptimalFigure", "CurvesFigure", "IsoFlopFigure",
    "KaplanViewsFigure", "LossComputeFigure", "LrFigure", "Panel", "Provenance", "Series", "StudyAnalysis",
    "StudyReport", "Summary", "Table", "accuracy_vs_compute", "analyse_study", "build_report",
    "chinchilla_figure", "compute_optimal_sizes", "exponent_table", "isoflop_figure", "kaplan_views",
    "loss_vs_compute", "lr_choices", "report_from_analysis", "resolve_study", "study_provenance",
    "study_summary", "training_curves", "write_report", "write_study_report",
]


def write_report(report: StudyReport, out: str | Path, *, static: bool = True) -> Path:
    """Write a built report to folder ``out``; returns the path of ``report.html``.

    Files: ``report.html`` (self-contained), ``report.json`` (its numbers),
    ``data/points-dropout-<d>.csv`` (the seed-mean settings every fit used) and,
    with ``static``, ``figures/<key>.png`` and ``.svg``.
    """
    from scalinglab.report.html import jsonable, render_report
    from scalinglab.report.static import save_chart

    out = Path(out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    charts = report.charts()
    files: dict[str, list[str]] = {}
    if static:
        (out / "figures").mkdir(exist_ok=True)
        for chart in charts:
            files[chart.key] = [p.relative_to(out).as_posix() for p in save_chart(chart, out / "figures")]
    data_files = []
    for d in report.analysis.dropouts:
        path = out / "data" / f"points-dropout-{d.dropout:g}.csv"
        cols = [c for c in ("run", "width", "fraction", "dropout", "lr", "n_seeds", "N", "D", "C", "loss",
                            "loss_sd", "acc") if c in d.points]
        d.points[cols].to_csv(path, index=False)
        data_files.append(path.relative_to(out).as_posix())
    (out / "report.json").write_text(json.dumps(jsonable(report.to_dict()), indent=1, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    page = out / "report.html"
    page.write_text(render_report(report, charts=charts, files=files, data_files=data_files), encoding="utf-8")
    return page


def write_study_report(*, db: str | Path, study: str | None = None, out: str | Path, n_resamples: int = 200,
                       chinchilla_starts: str = "hoffmann", static: bool = True, analyses=None) -> Path:
    """Analyse ``study`` in ``db`` (default: the most recent) and write its report to ``out``.

    Returns the path of ``out/report.html``. ``n_resamples`` and
    ``chinchilla_starts`` are the ``--bootstrap`` and ``--grid`` of ``scalinglab fit``.
    """
    report = build_report(db, study, n_resamples=n_resamples, chinchilla_starts=chinchilla_starts,
                          analyses=analyses)
    return write_report(report, out, static=static)
