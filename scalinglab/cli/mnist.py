"""CLI: ``sweep mnist``, ``runs`` and ``study mnist``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scalinglab.errors import ConfigError


def register(sub, study_sub) -> None:
    sweep = sub.add_parser("sweep", help="run a grid of training runs into the database")
    sweep_sub = sweep.add_subparsers(dest="family", required=True, metavar="FAMILY")
    p = sweep_sub.add_parser("mnist", help="the MNIST CNN family",
                             description="Train every run of a widths x fractions x seeds x dropout "
                                         "grid (one epoch each); finished runs are skipped.")
    p.add_argument("--config", metavar="TOML", help="read the grid from a TOML file (keys as the flags)")
    p.add_argument("--widths", help="comma list, e.g. 4,6,8 (default: the 9-step sqrt(2) ladder 4..64)")
    p.add_argument("--fractions", help="comma list, e.g. 1,1/2,1/4 (default: 1 .. 1/64)")
    p.add_argument("--seeds", help="comma list (default: 0)")
    p.add_argument("--dropout", help="comma list of dropout rates (default: 0)")
    _common(p)
    p.add_argument("--name", help="study name (default: derived from the grid, so re-running resumes)")
    p.set_defaults(func=cmd_sweep)

    runs = sub.add_parser("runs", help="export recorded runs as CSV or JSON")
    runs.add_argument("--db", default="runs.db", help="run database (default: runs.db)")
    runs.add_argument("--format", choices=("csv", "json"), default="csv")
    runs.add_argument("--study", help="only this study's runs")
    runs.add_argument("--status", help="only runs with this status (e.g. complete)")
    runs.add_argument("--out", help="write to this file instead of standard output")
    runs.set_defaults(func=cmd_runs)

    pk = sub.add_parser("peak", help="measure this machine's attainable conv GFLOP/s (fp32, bf16)")
    pk.add_argument("--refresh", action="store_true", help="measure again instead of using the cache")
    pk.set_defaults(func=cmd_peak)

    st = study_sub.add_parser("mnist", help="the course exercise: sweep, frontier fit, report",
                              description="Run a preset MNIST sweep, then fit the compute-efficient "
                                          "frontier and the compute-optimal width.")
    st.add_argument("--preset", default="quick", help="smoke | quick | full (default: quick)")
    _common(st)
    st.add_argument("--out", help="folder for the analysis JSON and plots (default: study-<preset>)")
    st.add_argument("--no-report", action="store_true", help="skip the HTML report")
    st.set_defaults(func=cmd_study)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default="runs.db", help="run database (default: runs.db)")
    p.add_argument("--lr", help="base LR (layer LR = lr/sqrt(fan_in)), a comma list to tune over, "
                                "or 'tune' for the default grid")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--precision", choices=("fp32", "bf16"))
    p.add_argument("--train-limit", type=int, help="use only the first K training images as the full set")
    p.add_argument("--data", help="folder of MNIST IDX files (default: the built-in copy)")
    p.add_argument("--workers", type=int, default=2,
                   help="worker processes, or Ray actors with --executor ray (0: train in this process; "
                        "with Ray, one actor per cluster CPU)")
    p.add_argument("--resume", action="store_true",
                   help="resume a killed sweep (re-running the same command always does: finished runs are skipped)")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--address", help="Ray cluster address (with --executor ray)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _grid_overrides(args) -> dict:
    from scalinglab.sweep.grid import tune_lrs

    over = {}
    for flag, key in (("widths", "widths"), ("fractions", "fractions"), ("seeds", "seeds"),
                      ("dropout", "dropouts")):
        if getattr(args, flag, None) is not None:
            over[key] = getattr(args, flag)
    if args.lr is not None:
        over["lrs"] = tune_lrs() if args.lr.strip() == "tune" else args.lr
    for key in ("batch_size", "precision", "train_limit", "data"):
        if getattr(args, key) is not None:
            over[key] = getattr(args, key)
    if args.workers < 0:
        raise ConfigError(f"--workers = {args.workers} is invalid: must be 0 or more")
    return over


def cmd_sweep(args) -> int:
    from scalinglab.study import sweep_mnist
    from scalinglab.sweep.grid import PRESETS, MnistGrid, read_grid_file

    base = read_grid_file(args.config) if args.config else {}
    full = PRESETS["full"]
    defaults = {"widths": full.widths, "fractions": full.fractions}
    grid = MnistGrid.from_dict({**defaults, **base, **_grid_overrides(args)},
                               origin=args.config or "grid")
    summary = sweep_mnist(grid, db=args.db, name=args.name, workers=args.workers,
                          executor=args.executor, address=args.address, progress=not args.quiet)
    print(summary.describe())
    return 0 if summary.failed == 0 else 1


def cmd_runs(args) -> int:
    from scalinglab.study import export_runs

    text = export_runs(args.db, fmt=args.format, study=args.study, status=args.status)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_peak(args) -> int:
    from scalinglab.sweep.peak import machine_peak

    peak = machine_peak(refresh=args.refresh)
    print(f"peak conv throughput on {peak.threads} threads: fp32 {peak.fp32_gflops:.0f} GFLOP/s, "
          f"bf16 {peak.bf16_gflops:.0f} GFLOP/s")
    return 0


def cmd_study(args) -> int:
    from scalinglab.study import run_mnist_study

    result = run_mnist_study(args.preset, db=args.db, out=args.out, overrides=_grid_overrides(args),
                             workers=args.workers, executor=args.executor, address=args.address,
                             progress=not args.quiet, report=not args.no_report)
    print(result.describe())
    return 0
