"""Bring runs logged elsewhere into the run store: MLflow, TensorBoard, CSV / JSON-lines exports.

    from scalinglab.importers import ImportMapping, import_runs, read_mlflow
    records = read_mlflow("sqlite:///mlflow.db", experiment="sweep",
                          mapping=ImportMapping({"N": "params.n_params"}))
    import_runs("runs.db", records, study="sweep")     # a study like any other: fit it, read it

Each reader returns ``(config, result)`` records (a :class:`Records` list
with notes on what was derived or skipped); :func:`import_runs` writes them,
idempotently. The libraries are imported only when used (extra ``import``).
docs/importing.md lists the commands and the default field names.
"""

from scalinglab.importers.common import (
    DEFAULT_FIELDS,
    FAMILY,
    ImportMapping,
    ImportSummary,
    Records,
    SourceRun,
    build_records,
    import_runs,
)
from scalinglab.importers.mlflow import read_mlflow
from scalinglab.importers.table import read_table_export
from scalinglab.importers.tensorboard import read_tensorboard

__all__ = ["DEFAULT_FIELDS", "FAMILY", "ImportMapping", "ImportSummary", "Records", "SourceRun", "build_records",
           "import_runs", "read_mlflow", "read_table_export", "read_tensorboard"]
