"""The MNIST study: the course exercise's presets, run through the one study pipeline.

``run_mnist_study("quick")`` sweeps the preset grid (9 widths x 7 fractions x
2 seeds), then analyses and reports it exactly as any other family's study
(:mod:`scalinglab.studies.pipeline`). The study's name carries the design's
hash, so changing the preset or an override starts a new study instead of
silently analysing old and new runs together; finished runs are never
retrained (a run's key is its config).
"""

from __future__ import annotations

from pathlib import Path

from scalinglab.families.mnist.grid import MnistGrid, mnist_design, preset
from scalinglab.studies.design import Design
from scalinglab.studies.pipeline import StudyRun, run_study, sweep_study
from scalinglab.sweep.engine import SweepSummary

FAMILY = "mnist_cnn"


def mnist_study_design(preset_name: str = "quick", overrides: dict | None = None) -> tuple[str, Design]:
    """The study name and design of a preset grid with ``overrides`` (grid keys as in ``MnistGrid``)."""
    grid = MnistGrid.from_dict({**preset(preset_name).to_dict(), **(overrides or {})})
    design = mnist_design(grid)
    design.description["preset"] = preset_name
    return f"mnist-{preset_name}-{design.digest()}", design


def run_mnist_study(preset_name: str = "quick", *, overrides: dict | None = None, out: str | Path | None = None,
                    **options) -> StudyRun:
    """Sweep (resuming), analyse and report a preset; ``options`` as :func:`~scalinglab.studies.pipeline.run_study`."""
    name, design = mnist_study_design(preset_name, overrides)
    return run_study(FAMILY, design, name=name, out=out or f"study-{preset_name}", **options)


def sweep_mnist(grid: MnistGrid, *, db: str | Path = "runs.db", name: str | None = None, **options) -> SweepSummary:
    """Run (or resume) every run of ``grid`` into ``db``; ``options`` as :func:`~scalinglab.studies.pipeline.sweep_study`."""
    return sweep_study(FAMILY, mnist_design(grid), db=db, name=name, **options)[1]
