"""``scalinglab import mlflow|tensorboard|table``: argument parsing and printing only."""

from __future__ import annotations

import argparse
import json

_KEYS = "N, D, C, loss, val_acc, seed, curve, run, id"


def register(sub, study_sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default="runs.db", help="run database to import into (default: runs.db)")
    common.add_argument("--study", required=True, help="study name for the imported runs")
    common.add_argument("--map", action="append", default=[], metavar="KEY=FIELD", dest="pairs",
                        help=f"source field for KEY ({_KEYS}), e.g. N=params.n_params; repeatable "
                             "(defaults: docs/importing.md)")
    common.add_argument("--group", action="append", default=[], metavar="FIELD",
                        help="copy FIELD into each run's config, to group or filter fits on it; repeatable")
    common.add_argument("--examples-per-step", type=float, default=1.0, metavar="K",
                        help="curve x = logged step * K (default 1: log with step = examples seen)")
    common.add_argument("--json", action="store_true", help="print what was imported as JSON")

    p = sub.add_parser("import", help="bring runs from MLflow, TensorBoard or a CSV/JSON-lines export into a study",
                       description="Import finished runs into the run store as a study that fit and the Python API "
                                   "read like any other. Re-importing the same runs adds nothing.")
    src = p.add_subparsers(dest="source", required=True, metavar="SOURCE")
    m = src.add_parser("mlflow", parents=[common], help="an MLflow tracking store (folder or sqlite:///FILE)")
    m.add_argument("uri", help="MLflow store: a folder such as ./mlruns, or sqlite:///mlflow.db")
    m.add_argument("--experiment", help="experiment name (needed when several hold runs)")
    t = src.add_parser("tensorboard", parents=[common], help="TensorBoard event files (one run per folder)")
    t.add_argument("path", help="log folder (as given to SummaryWriter) or one event file")
    b = src.add_parser("table", parents=[common], help="a CSV or JSON-lines export, e.g. from W&B")
    b.add_argument("file", help="runs table: .csv, .tsv, .jsonl or .json, one run per row")
    b.add_argument("--history", metavar="FILE", help="per-step history table (long, or a W&B panel CSV)")
    p.set_defaults(func=run_import)


def run_import(args) -> int:
    from scalinglab.importers import ImportMapping, import_runs, read_mlflow, read_table_export, read_tensorboard

    mapping = ImportMapping.from_pairs(args.pairs, args.group, args.examples_per_step)
    if args.source == "mlflow":
        records = read_mlflow(args.uri, experiment=args.experiment, mapping=mapping)
    elif args.source == "tensorboard":
        records = read_tensorboard(args.path, mapping=mapping)
    else:
        records = read_table_export(args.file, mapping=mapping, history=args.history)
    summary = import_runs(args.db, records, study=args.study)
    if args.json:
        print(json.dumps({"study": summary.study, "db": summary.db, "source": records.source,
                          "added": len(summary.added), "already_stored": summary.already,
                          "mapping": summary.mapping, "notes": summary.notes}, indent=1))
        return 0
    print(f"study {summary.study!r} in {summary.db}: {len(summary.added)} run(s) added, {summary.already} "
          f"already stored (from {records.source})")
    print("mapping: " + ", ".join(f"{k} <- {v}" for k, v in summary.mapping.items()))
    for note in summary.notes:
        print(f"note: {note}")
    return 0
