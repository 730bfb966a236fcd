"""A study's report as data: its analysis, summary, provenance and every figure, generic and family extras.

The family hook. A family object may define

    def report_extras(self, study, analysis) -> list:
        ...

``study`` is the :class:`~scalinglab.studies.load.LoadedStudy`, ``analysis``
its :class:`~scalinglab.studies.analysis.StudyAnalysis`. It returns figure
data: objects with a ``key`` (file stem and HTML id, unique in the report),
a ``chart()`` returning a :class:`~scalinglab.report.chart.Chart`, and
optionally ``findings`` (paragraphs added to the summary). To say why a
figure is not shown, return a :class:`Missing` in the list instead. The
report finds the hook on the family object named by the study (its stored
``family_spec`` or registered name); a study whose family cannot be
imported gets the generic figures only. MNIST's and the LM's extras are in
``scalinglab/families/{mnist,lm}/report.py``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import pandas as pd

from scalinglab.report.chart import Chart
from scalinglab.studies.analysis import StudyAnalysis, Summary, fmt_num


class FigureData(Protocol):
    """What a figure gives the report: a key and a chart (``findings`` is optional)."""

    key: str

    def chart(self) -> Chart: ...


@dataclass(frozen=True)
class Missing:
    """A figure a family could not draw for this study, and why (listed under "Not shown")."""

    key: str
    reason: str


ReportExtras = Callable[[Any, StudyAnalysis], list]


def family_hook(study) -> ReportExtras | None:
    """The ``report_extras`` of the study's family object, or None (no hook, or the family is not importable)."""
    from scalinglab.errors import ConfigError
    from scalinglab.sweep.family import get_family

    try:
        family = get_family(study.family_spec or study.family)
    except (ConfigError, ImportError):
        return None
    return getattr(family, "report_extras", None)


# ===================================================================== provenance

@dataclass(frozen=True)
class Provenance:
    """How the study was run."""

    rows: list[tuple[str, str]]  # label, value
    design: dict  # the study's design as stored (or the distinct values of its setting keys)


def _distinct(values) -> str:
    vals = sorted({v for v in values if v is not None and v == v}, key=lambda v: (str(type(v)), v))
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals) or "—"


def _hms(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "—"
    s = int(round(seconds))
    return f"{s // 3600}h {s % 3600 // 60:02d}m {s % 60:02d}s" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def study_provenance(study, sa: StudyAnalysis, db: str) -> Provenance:
    from scalinglab.provenance import code_version

    runs, info = study.runs, sa.info
    keys = [*sa.setting_keys, *sa.tuned, study.design.get("seed_key", "seed")]
    design = {k: info[k] for k in ("design", "grid", "preset") if info.get(k)} or {
        k: sorted(runs[k].dropna().unique().tolist(), key=str) for k in keys if k in runs}
    versions = info.get("versions")
    if not versions and "versions" in runs:
        raw = next((v for v in runs["versions"] if v), None)
        versions = json.loads(raw) if isinstance(raw, str) else (raw or {})
    versions = versions or {}
    finished = runs["finished"].dropna() if "finished" in runs else pd.Series(dtype=float)
    span = float(finished.max() - runs["created"].min()) if len(finished) and "created" in runs else None
    rows = [("study", sa.study), ("family", sa.family), ("database", db),
            ("runs", ", ".join(f"{n} {s}" for s, n in sa.status.items()))]
    rows += [(k, _distinct(runs[k]) + (" (tuned per setting)" if k in sa.tuned else "")) for k in keys if k in runs]
    machine = [versions.get("processor"), versions.get("machine"),
               f"{info['cpus']} CPUs" if info.get("cpus") else None,
               f"{info['workers']} workers ({info.get('executor', 'local')})" if info.get("workers") else None]
    rows += [("machine", ", ".join(m for m in machine if m) or "—"),
             ("versions", ", ".join(f"{k} {versions[k]}" for k in ("python", "torch", "numpy") if k in versions)
              or "—"),
             ("code", _distinct(runs["code_version"].dropna()) if "code_version" in runs else "—"),
             ("compute time (sum of runs)", _hms(float(runs["wall_s"].fillna(0).sum())) if "wall_s" in runs else "—"),
             ("sweep wall time", _hms(info.get("sweep_wall_s") or span)),
             ("training FLOPs", f"{fmt_num(float(runs['flops'].fillna(0).sum()))} in total"
              + (f", {info['sweep_gflops_per_s']:.1f} GFLOP/s" if info.get("sweep_gflops_per_s") else "")),
             ("analysis", f"{sa.settings['n_resamples']} bootstrap resamples, {round(100 * sa.settings['level'])}% "
              f"intervals, Chinchilla starts '{sa.settings['chinchilla_starts']}'"),
             ("report", f"{code_version()}, {time.strftime('%Y-%m-%d %H:%M', time.localtime(sa.created))}")]
    rows += [(k, str(info[k])) for k in ("notes", "description") if info.get(k)]
    return Provenance(rows, design)


# ===================================================================== the report

@dataclass
class StudyReport:
    """A study's analysis, its summary and every figure's data."""

    study: Any  # scalinglab.studies.load.LoadedStudy
    analysis: StudyAnalysis
    summary: Summary
    provenance: Provenance
    figures: list  # FigureData: generic first, then the family's
    missing: dict[str, str]  # figure key -> why it is not shown
    db: str = ""

    def charts(self) -> list[Chart]:
        return [f.chart() for f in self.figures]

    def figure(self, key: str):
        for f in self.figures:
            if f.key == key:
                return f
        raise KeyError(f"no figure {key!r}; figures: {', '.join(f.key for f in self.figures)}")

    def to_dict(self) -> dict[str, Any]:
        """report.json: the analysis (every FitResult), the summary, and which figures are shown."""
        from scalinglab.fit.result import clean

        s = self.summary
        return clean({"study": self.analysis.study, "family": self.analysis.family, "db": self.db,
                      "info": self.analysis.info, "analysis": self.analysis.to_dict(),
                      "summary": {"findings": s.findings, "comparison": s.comparison, "uncertain": s.uncertain,
                                  "allocation": [dict(zip(s.allocation_columns, r)) for r in s.allocation],
                                  "tables": [{"caption": c, "rows": [dict(zip(cols, r)) for r in rows]}
                                             for c, cols, rows in s.tables]},
                      "figures": [f.key for f in self.figures], "missing": self.missing})


def report_from_analysis(study, sa: StudyAnalysis, *, extras: ReportExtras | None | bool = True,
                         db: str = "") -> StudyReport:
    """Every figure's data for an analysed study; ``extras``: True finds the family's hook, or give one, or None."""
    from scalinglab.errors import ConfigError
    from scalinglab.report.figures import generic_figures

    figures, missing = generic_figures(study, sa)
    hook = family_hook(study) if extras is True else (extras or None)
    for item in (hook(study, sa) if hook is not None else []):
        if isinstance(item, Missing):
            missing[item.key] = item.reason
        else:
            figures.append(item)
    keys = [f.key for f in figures]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"report figure keys must be unique; {study.family}'s report_extras repeats one of "
                          f"{', '.join(keys)}")
    findings = [p for f in figures for p in getattr(f, "findings", ())]
    return StudyReport(study, sa, sa.summary(findings), study_provenance(study, sa, db), figures, missing, db)


def build_report(db: str | Path, study: str | None = None, *, family: str | None = None, n_resamples: int = 200,
                 level: float = 0.95, chinchilla_starts: str = "hoffmann", analysis: StudyAnalysis | None = None,
                 extras: ReportExtras | None | bool = True) -> StudyReport:
    """Load a study, analyse it (unless ``analysis`` is given) and compute every figure's data (no drawing)."""
    from scalinglab.studies.analysis import analyse_study
    from scalinglab.studies.load import load_study

    loaded = load_study(db, study, family=family)
    if analysis is None:
        analysis = analyse_study(loaded, n_resamples=n_resamples, level=level, chinchilla_starts=chinchilla_starts)
    return report_from_analysis(loaded, analysis, extras=extras, db=str(db))
