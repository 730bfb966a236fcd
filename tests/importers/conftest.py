"""Real MLflow stores for the import tests, written once per session by MLflow itself."""

from __future__ import annotations

import pytest
from import_sources import SIZES, log_mlflow_runs


@pytest.fixture(scope="session")
def mlflow_stores(tmp_path_factory):
    """{"file": URI, "sqlite": URI} of two real MLflow stores holding the same six runs."""
    pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("mlflow")
    uris = {"file": (root / "mlruns").as_uri(), "sqlite": f"sqlite:///{root / 'mlflow.db'}"}
    for uri in uris.values():
        log_mlflow_runs(uri, "sweep", SIZES)
    return uris
