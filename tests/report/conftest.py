"""Fixtures of the report tests: one synthetic study, analysed and written once per session."""

from __future__ import annotations

import pytest
from report_synthetic import DROPOUTS, FRACTIONS, INJECT, LRS, NOTE, OLDER, SEEDS, STUDY, WIDTHS, add_study

from scalinglab.store import RunStore


@pytest.fixture(scope="session")
def study_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "runs.db"
    with RunStore(path) as store:
        store.conn.execute("PRAGMA synchronous = OFF")  # a throwaway file: skip the fsync per run
        add_study(store, OLDER, [dict(width=w, fraction=f, seed=0, lr=0.1) for w in (4, 8) for f in (1.0, 0.5)], {})
        configs = [dict(width=w, fraction=f, seed=s, dropout=d, lr=lr, batch_size=128, precision="bf16",
                        data=INJECT)
                   for w in WIDTHS for f in FRACTIONS for d in DROPOUTS for lr in LRS for s in SEEDS]
        add_study(store, STUDY, configs, {"grid": {"widths": list(WIDTHS), "note": INJECT}, "cpus": 2,
                                          "workers": 2, "sweep_wall_s": 12.5, "notes": NOTE})
    return path


@pytest.fixture(scope="session")
def report(study_db):
    from scalinglab.report import build_report

    return build_report(study_db, n_resamples=40, chinchilla_starts="coarse")


@pytest.fixture(scope="session")
def written(report, tmp_path_factory):
    from scalinglab.report import write_report

    return write_report(report, tmp_path_factory.mktemp("out"))
