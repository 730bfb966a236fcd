"""The study report: one self-contained HTML page of figures for any family's study.

    from scalinglab.report import build_report, write_report
    report = build_report("runs.db", "mnist-1a2b3c4d")   # analysis + every figure's data, no drawing
    report.figure("loss-compute").panels[0].frontier      # the numbers behind a figure
    report.figure("loss-compute").chart().plot()          # a matplotlib Figure (notebooks)
    write_report(report, "report/")                       # report.html + figures/*.png|svg + data/*.csv

Layers: :mod:`scalinglab.studies.analysis` makes every fit (through
``fit_law``); :mod:`.figures` turns fits and points into generic figure data,
and a family adds its own through the ``report_extras`` hook (:mod:`.build`);
:mod:`.chart` is the renderer-neutral chart model that :mod:`.html` draws as
inline SVG and :mod:`.static` with matplotlib. docs/report.md says what each
figure answers. Importing this package loads neither torch nor the sweep engine.
"""

from __future__ import annotations

import json
from pathlib import Path

from scalinglab.report.build import (
    FigureData,
    Missing,
    Provenance,
    ReportExtras,
    StudyReport,
    build_report,
    family_hook,
    report_from_analysis,
    study_provenance,
)
from scalinglab.report.chart import Chart, Panel, Series, Table

__all__ = [
    "Chart", "FigureData", "Missing", "Panel", "Provenance", "ReportExtras", "Series", "StudyReport", "Table",
    "build_report", "family_hook", "report_from_analysis", "study_provenance", "write_report", "write_study_report",
]


def write_report(report: StudyReport, out: str | Path, *, static: bool = True) -> Path:
    """Write a built report to folder ``out``; returns the path of ``report.html``.

    Files: ``report.html`` (self-contained), ``report.json`` (every number),
    ``data/points-<group>.csv`` (the seed-mean settings each group's fits
    read, so ``scalinglab fit`` reproduces them) and, with ``static``,
    ``figures/<key>.png`` and ``.svg``.
    """
    from scalinglab.report.html import render_report
    from scalinglab.report.static import save_chart
    from scalinglab.safe_io import prepare_out_dir, safe_subdir, write_text_atomic

    out = prepare_out_dir(out)  # every file below replaces, never follows, a link planted in out
    charts = report.charts()
    files: dict[str, list[str]] = {}
    if static:
        figures = safe_subdir(out, "figures")
        for chart in charts:
            files[chart.key] = [p.relative_to(out).as_posix() for p in save_chart(chart, figures)]
    data_files = {}
    for g in report.analysis.groups:
        path = write_text_atomic(out, f"data/points-{g.slug}.csv", g.points.to_csv(index=False))
        data_files[g.label] = path.relative_to(out).as_posix()
    write_text_atomic(out, "report.json", json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n")
    return write_text_atomic(out, "report.html", render_report(report, charts=charts, files=files,
                                                               data_files=data_files))


def write_study_report(*, db: str | Path, study: str | None = None, family: str | None = None, out: str | Path,
                       n_resamples: int = 200, level: float = 0.95, chinchilla_starts: str = "hoffmann",
                       static: bool = True, analysis=None) -> Path:
    """Analyse ``study`` in ``db`` (or use ``analysis``) and write its report to ``out``; returns report.html.

    ``n_resamples``, ``level`` and ``chinchilla_starts`` are the ``--bootstrap``,
    ``--level`` and ``--grid`` of ``scalinglab fit``.
    """
    report = build_report(db, study, family=family, n_resamples=n_resamples, level=level,
                          chinchilla_starts=chinchilla_starts, analysis=analysis)
    return write_report(report, out, static=static)
