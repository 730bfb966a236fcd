"""One study pipeline for every model family.

A study is a family and a design; ``run_study`` sweeps the design into the
run store (resuming what a killed sweep left), reads the study back as
seed-mean points, analyses them (:func:`scalinglab.studies.analysis.analyse_study`)
and writes ``analysis.json`` and the HTML report. ``study mnist``,
``study lm`` and ``study --family module:ATTR --config design.toml`` all run
through it; only the design differs.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalinglab.errors import ConfigError
from scalinglab.safe_io import prepare_out_dir, write_text_atomic
from scalinglab.studies.design import Design
from scalinglab.sweep.engine import SweepSummary, run_sweep
from scalinglab.sweep.family import Family, resolve_family


def default_study_name(family: Family, design: Design) -> str:
    return f"{family.name}-{design.digest()}"


def sweep_study(family: str | Family, design: Design, *, db: str | Path = "runs.db", name: str | None = None,
                workers: int = 2, executor: str = "local", address: str | None = None,
                progress: bool = True) -> tuple[str, SweepSummary]:
    """Run (or resume) every run of ``design``; returns the study name and what the sweep did.

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
        summary = run_sweep(store, name, family, design.configs, workers=workers, executor=executor,
                            address=address, progress=progress, info=info)
        store.update_study_info(name, **info)  # studies created before designs were recorded
    return name, summary


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
        """1 when any run failed (re-run the same command to retry them), else 0."""
        return 1 if self.sweep.failed else 0

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
    study = load_study(db, name)
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
