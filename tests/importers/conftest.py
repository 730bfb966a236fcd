"""Real MLflow stores for the import tests, written once per session by MLflow itself."""

from __future__ import annotations

import pytest
from import_sources import SIZES, log_mlflow_runs


@pytest.fixture(scope="session")
def mlflow_stores(tmp_path_factory):
    """{"file": URI, "sqlite": URI} of two real MLflow stores holding the same six runs."""
    pytest.importorskip("mlflow")
    import mlflow

    root = tmp_path_factory.mktemp("mlflow")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_ALLOW_FILE_STORE", "true")      # MLflow 3 refuses new file stores without it
    previous = mlflow.get_tracking_uri()
    uris = {"file": (root / "mlruns").as_uri(), "sqlite": f"sqlite:///{root / 'mlflow.db'}"}
    try:
        for uri in uris.values():
            log_mlflow_runs(uri, "sweep", SIZES)
    finally:
        mlflow.set_tracking_uri(previous)
        mp.undo()
    return uris
