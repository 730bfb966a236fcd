"""Fixtures of the report tests: one database of synthetic studies, each analysed and written once per session."""

from __future__ import annotations

import pytest
from report_synthetic import LM_STUDY, STUDY, TOY_STUDY, build_db

N_RESAMPLES = 40


@pytest.fixture(scope="session")
def study_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "runs.db"
    build_db(path)
    return path


def _report(db, name, extras):
    from scalinglab.report import build_report

    return build_report(db, name, n_resamples=N_RESAMPLES, chinchilla_starts="coarse", extras=extras)


@pytest.fixture(scope="session")
def report(study_db):
    """The MNIST study's report, with the MNIST family's extra figures."""
    from scalinglab.families.mnist.report import report_extras

    return _report(study_db, STUDY, report_extras)


@pytest.fixture(scope="session")
def lm_report(study_db):
    from scalinglab.families.lm.report import report_extras

    return _report(study_db, LM_STUDY, report_extras)


@pytest.fixture(scope="session")
def toy_report(study_db):
    """A family no module defines: the hook lookup finds nothing and the report is the generic one."""
    return _report(study_db, TOY_STUDY, True)


def _write(report, tmp_path_factory, name, static=True):
    from scalinglab.report import write_report

    return write_report(report, tmp_path_factory.mktemp(name), static=static)


@pytest.fixture(scope="session")
def written(report, tmp_path_factory):
    return _write(report, tmp_path_factory, "out")


@pytest.fixture(scope="session")
def lm_written(lm_report, tmp_path_factory):
    return _write(lm_report, tmp_path_factory, "lm-out", static=False)


@pytest.fixture(scope="session")
def toy_written(toy_report, tmp_path_factory):
    return _write(toy_report, tmp_path_factory, "toy-out", static=False)
