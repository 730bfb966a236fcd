"""One study pipeline for every model family.

A study is a family and a design; ``run_study`` sweeps the design into the
run store (resuming what a killed sweep left), reads the study back as
seed-mean points, analyses them (:func:`scalinglab.studies.analysis.analyse_study`)
and writes ``analysis.json`` and the HTML report. ``study mnist``,
``study lm`` and ``study --family module:ATTR --config design.toml`` all run
through it; only the design differs.

Two optional family hooks shape the sweep and the points without the
pipeline knowing the family: ``sweep_context(db)`` (a context manager the
sweep runs inside, e.g. the LM family's checkpoint folder beside the
database) and ``point_runs(runs)`` (:mod:`scalinglab.studies.load`). A
design in phases (:class:`~scalinglab.studies.design.Design`) is swept phase
by phase; when a phase has failed runs the later phases are not started,
since their runs may start from the failed ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from scalinglab.errors import ConfigError, FitError
from scalinglab.safe_io import prepare_out_dir, write_text_atomic
from scalinglab.studies.design import Design
from scalinglab.sweep.engine import SweepSummary, run_sweep
from scalinglab.sweep.family import Family, resolve_family


def default_study_name(family: Family, design: Design) -> str:
    return f"{family.name}-{design.digest()}"


@dataclass
class StudySweep(SweepSummary):
    """What the sweep of every phase of a design did, added up; ``not_started``: runs of phases never begun."""

    not_started: int = 0
    phases: int = 1

    @property
    def failed_total(self) -> int:
        return self.failed + self.not_started

    def describe(self) -> str:
        text = super().describe()
        if self.not_started:
            text += (f"\n{self.not_started} runs of a later phase were not started: they start from runs of an "
                     f"earlier phase, {self.failed} of which failed; re-run the same command to retry them")
        return text


def _combined(parts: list[SweepSummary], not_started: int, phases: int) -> StudySweep:
    total = {f.name: sum(getattr(p, f.name) for p in parts) for f in fields(SweepSummary)}
    return StudySweep(**total, not_started=not_started, phases=phases)


def sweep_context(family: Family, db: str | Path):
    """The family's ``sweep_context(db)`` hook (entered around the sweep), or a context that does nothing."""
    hook = getattr(family, "sweep_context", None)
    return hook(db) if hook is not None else contextlib.nullcontext()


def sweep_study(family: str | Family, design: Design, *, db: str | Path = "runs.db", name: str | None = None,
                workers: int = 2, executor: str = "local", address: str | None = None,
                progress: bool = True) -> tuple[str, StudySweep]:
    """Run (or resume) every run of ``design``, phase by phase; returns the study name and what the sweep did.

    A study name belongs to one design: re-running it resumes, while a changed
    design under the same name is refused rather than mixed with the old runs.
    """
    from scalinglab.store import RunStore

    fam, _ = resolve_family(family)
    name = name or default_study_name(fam, design)
    info = {**design.info(), "design_digest": design.digest()}
    with RunStore(db) as store:
        existing = store.studies()
        if name in set(existing["name"]):
            old = store.study_info(name).get("design_digest")
            if old is not None and old != design.digest():
                raise ConfigError(f"study {name!r} in {db} was created with another design; give another "
                                  "--name, or leave --name out to get one derived from the design")
        phases = design.sweep_phases()
        for config in design.configs:
            fam.cost(config)  # every phase's configs are valid before the first phase starts
        parts, not_started = [], 0
        with sweep_context(fam, store.path):
            for i, configs in enumerate(phases):
                if parts and parts[-1].failed:
                    not_started = sum(len(p) for p in phases[i:])
                    break
                parts.append(run_sweep(store, name, family, configs, workers=workers, executor=executor,
                                       address=address, progress=progress, info=info))
        store.update_study_info(name, **info)  # studies created before designs were recorded
    return name, _combined(parts, not_started, len(phases))


@dataclass
class StudyRun:
    """What ``run_study`` did: the sweep, the study as read back, its analysis and where it was written."""

    name: str
    db: str
    out: Path
    sweep: SweepSummary
    analysis: Any  # scalinglab.studies.analysis.StudyAnalysis
    summary: str  # the plain-text summary, family findings included (the report shows the same)
    info: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """1 when any run failed or was not started (re-run the same command to retry them), else 0."""
        return 1 if self.sweep.failed or getattr(self.sweep, "not_started", 0) else 0

    def describe(self) -> str:
        lines = [f"study {self.name} in {self.db}: {self.sweep.describe()}"]
        if self.sweep.ran and self.info.get("peak_gflops"):
            lines.append(f"training ran at {self.info['pct_of_peak']:.1f}% of this machine's measured "
                         f"{self.info['precision']} peak ({self.info['peak_gflops']:.0f} GFLOP/s; load average "
                         f"{self.info['load_average']:.2f} on {self.info['cpus']} CPUs); study wall time "
                         f"{self.info['total_wall_s']:.0f} s")
        lines += ["", self.summary, "", f"analysis written to {self.out}"]
        return "\n".join(lines)


def run_study(family: str | Family, design: Design, *, db: str | Path = "runs.db", name: str | None = None,
              out: str | Path | None = None, workers: int = 2, executor: str = "local",
              address: str | None = None, progress: bool = True, report: bool = True,
              n_resamples: int = 200) -> StudyRun:
    """Sweep, read back, analyse, write ``analysis.json`` and (``report=True``) the HTML report to ``out``."""
    from scalinglab.provenance import code_version, library_versions
    from scalinglab.studies.analysis import analyse_study
    from scalinglab.studies.load import load_study
    from scalinglab.store import RunStore
    from scalinglab.sweep.peak import machine_peak

    fam, _ = resolve_family(family)
    name = name or default_study_name(fam, design)
    out = prepare_out_dir(Path(out or f"study-{name}"))  # fails now, not after training
    start = time.perf_counter()
    name, summary = sweep_study(family, design, db=db, name=name, workers=workers, executor=executor,
                                address=address, progress=progress)
    precision = design.configs[0].get("precision", "fp32")
    info: dict[str, Any] = {"workers": workers, "executor": executor, "code_version": code_version(),
                            "versions": library_versions(), "cpus": os.cpu_count(), "precision": precision,
                            "sweep_wall_s": summary.wall_s, "sweep_gflops_per_s": summary.gflops_per_s}
    if summary.ran:
        peak = machine_peak().for_precision(precision)
        info.update(peak_gflops=peak, pct_of_peak=100 * summary.gflops_per_s / peak, load_average=os.getloadavg()[0])
    try:
        study = load_study(db, name)
    except (ConfigError, FitError) as exc:
        if not (summary.failed or summary.not_started):
            raise
        raise ConfigError(f"study {name}: {summary.failed} runs failed and {summary.not_started} were not started, "
                          f"so nothing can be analysed yet ({exc}); re-run the same command to retry them (see "
                          f"`scalinglab runs --db {db} --status failed`)") from None
    analysis = analyse_study(study, n_resamples=n_resamples)
    info["total_wall_s"] = time.perf_counter() - start
    with RunStore(db) as store:
        store.update_study_info(name, **info)
    from scalinglab.report import report_from_analysis, write_report

    built = report_from_analysis(study, analysis, db=str(db))  # the family's findings join the summary
    write_text_atomic(out, "analysis.json", json.dumps({"study": name, "db": str(db), "info": info,
                                                        **analysis.to_dict()}, indent=1, default=float) + "\n")
    if report:
        write_report(built, out)
    return StudyRun(name=name, db=str(db), out=out, sweep=summary, analysis=analysis,
                    summary=built.summary.text(), info=info)
