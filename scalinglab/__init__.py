"""scalinglab: run, record, fit and show neural scaling laws.

A notebook needs only this module::

    import scalinglab as sl
    study = sl.load_study("runs.db", "mnist_cnn-1a2b3c4d")   # runs and seed-mean points
    fit = sl.fit_law(study.points, "chinchilla", n_resamples=200)
    fit.to_dict()                                              # the same JSON as `scalinglab fit --json`

Names are imported on first use, so ``import scalinglab`` is fast and does
not load torch; the training parts load it when a sweep runs.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scalinglab")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"

# public name -> module that defines it
_EXPORTS = {
    # errors
    "ScalingLabError": "scalinglab.errors", "ConfigError": "scalinglab.errors", "DataError": "scalinglab.errors",
    "FitError": "scalinglab.errors", "StoreError": "scalinglab.errors",
    # families and sweeps
    "Family": "scalinglab.sweep.family", "RunResult": "scalinglab.sweep.family",
    "get_family": "scalinglab.sweep.family", "run_sweep": "scalinglab.sweep.engine",
    "SweepSummary": "scalinglab.sweep.engine", "RunStore": "scalinglab.store",
    # studies
    "Design": "scalinglab.studies.design", "grid_configs": "scalinglab.studies.design",
    "read_design_file": "scalinglab.studies.design", "family_design": "scalinglab.studies.design",
    "run_study": "scalinglab.studies.pipeline", "sweep_study": "scalinglab.studies.pipeline",
    "StudyRun": "scalinglab.studies.pipeline",
    "load_study": "scalinglab.studies.load", "list_studies": "scalinglab.studies.load",
    "LoadedStudy": "scalinglab.studies.load", "study_points": "scalinglab.studies.points",
    # fitting
    "load_runs": "scalinglab.fit", "read_table": "scalinglab.fit", "bootstrap": "scalinglab.fit",
    "backtest": "scalinglab.fit", "compute_optimal": "scalinglab.fit", "compute_frontier": "scalinglab.fit",
    "approach1": "scalinglab.fit", "isoflop_profiles": "scalinglab.fit", "fit_frontier": "scalinglab.fit",
    "ChinchillaFit": "scalinglab.fit", "KaplanFit": "scalinglab.fit", "PowerLawFit": "scalinglab.fit",
    "PUBLISHED_LAWS": "scalinglab.fit", "load_law": "scalinglab.fit", "fit_law": "scalinglab.fit",
    "fit_groups": "scalinglab.fit", "FitResult": "scalinglab.fit", "Interval": "scalinglab.fit",
    "compare_laws": "scalinglab.fit", "fit_variants": "scalinglab.fit", "compare_variants": "scalinglab.fit",
    "prediction_intervals": "scalinglab.fit",
    # analysis and report of a study
    "analyse_study": "scalinglab.studies.analysis", "StudyAnalysis": "scalinglab.studies.analysis",
    "export_runs": "scalinglab.studies.load",
    "build_report": "scalinglab.report", "write_report": "scalinglab.report",
    "write_study_report": "scalinglab.report",
    # runs logged elsewhere
    "import_runs": "scalinglab.importers", "read_mlflow": "scalinglab.importers",
    "read_tensorboard": "scalinglab.importers", "read_table_export": "scalinglab.importers",
    "ImportMapping": "scalinglab.importers",
    # power laws in data
    "analyse_corpus": "scalinglab.analysis.zipf", "analyse_spectrum": "scalinglab.analysis.spectrum",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scalinglab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
