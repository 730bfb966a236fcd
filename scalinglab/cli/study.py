"""CLI: the generic ``sweep`` and ``study`` of any family (``--family module:ATTR --config design.toml``),
``runs`` and ``peak``. Family presets (``study mnist``, ``study lm``) live in their own modules."""

from __future__ import annotations

import argparse
import sys

from scalinglab.errors import ConfigError


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Where runs go and how they are executed: shared by every sweep and study command."""
    p.add_argument("--db", default="runs.db", help="run database (default: runs.db)")
    p.add_argument("--workers", type=int, default=2,
                   help="worker processes, or Ray actors with --executor ray (0: train in this process). "
                        "Re-running the same command resumes: finished runs are skipped")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--address", help="Ray cluster address (only with --executor ray)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def check_run_options(args) -> None:
    if args.workers < 0:
        raise ConfigError(f"--workers = {args.workers} is invalid: must be 0 or more")
    if args.address is not None and args.executor != "ray":
        raise ConfigError("--address names a Ray cluster; add --executor ray (or drop --address)")


def run_kwargs(args) -> dict:
    check_run_options(args)
    return {"db": args.db, "workers": args.workers, "executor": args.executor, "address": args.address,
            "progress": not args.quiet}


def register_generic(study: argparse.ArgumentParser, sweep: argparse.ArgumentParser) -> None:
    """Options of ``study`` and ``sweep`` used without a family subcommand: a user's own family."""
    for p, what in ((study, "study"), (sweep, "sweep")):
        p.add_argument("--family", help="your family object as module:attribute (e.g. mlp_family:FAMILY), "
                                        "or a registered name (mnist_cnn, lm)")
        p.add_argument("--config", metavar="TOML", help="the design: [grid], [fixed], [study] seeds/variants/tuned")
        p.add_argument("--name", help=f"{what} name (default: the family's name and the design's hash)")
        add_run_options(p)
    study.add_argument("--out", help="folder for analysis.json and the report (default: study-<name>)")
    study.add_argument("--no-report", action="store_true", help="skip the HTML report")
    study.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples per interval (default: 200)")
    from scalinglab.cli.plan import add_adaptive_options

    add_adaptive_options(study)
    study.set_defaults(func=cmd_study)
    sweep.set_defaults(func=cmd_sweep)


def register(sub, study_sub) -> None:
    runs = sub.add_parser("runs", help="export recorded runs as CSV or JSON")
    runs.add_argument("--db", default="runs.db", help="run database (default: runs.db)")
    runs.add_argument("--format", choices=("csv", "json"), default="csv")
    runs.add_argument("--study", help="only this study's runs")
    runs.add_argument("--family", help="only runs of this family (its declared name, e.g. mnist_cnn)")
    runs.add_argument("--status", help="only runs with this status (e.g. complete)")
    runs.add_argument("--out", help="write to this file instead of standard output")
    runs.set_defaults(func=cmd_runs)

    studies = sub.add_parser("studies", help="list the studies in a run database")
    studies.add_argument("--db", default="runs.db", help="run database (default: runs.db)")
    studies.set_defaults(func=cmd_studies)

    pk = sub.add_parser("peak", help="measure this machine's attainable conv GFLOP/s (fp32, bf16)")
    pk.add_argument("--refresh", action="store_true", help="measure again instead of using the cache")
    pk.set_defaults(func=cmd_peak)


def _design(args):
    from scalinglab.studies.design import read_design_file
    from scalinglab.sweep.family import resolve_family

    if not args.family:
        raise ConfigError("give a family: a subcommand (mnist, lm) or --family module:attribute with --config TOML")
    if not args.config:
        raise ConfigError("--family needs --config TOML, the design to sweep (see examples/mlp_design.toml)")
    family, _ = resolve_family(args.family)
    design, name = read_design_file(args.config, family)
    return args.family, design, args.name or name


def cmd_sweep(args) -> int:
    from scalinglab.studies.pipeline import sweep_study

    family, design, name = _design(args)
    name, summary = sweep_study(family, design, name=name, **run_kwargs(args))
    print(f"study {name}: {summary.describe()}")
    return 1 if summary.failed else 0


def cmd_study(args) -> int:
    from scalinglab.studies.pipeline import run_study

    family, design, name = _design(args)
    if args.adaptive:
        from scalinglab.cli.plan import cmd_adaptive_family

        return cmd_adaptive_family(args, family, design, name)
    result = run_study(family, design, name=name, out=args.out, report=not args.no_report,
                       n_resamples=args.bootstrap, **run_kwargs(args))
    print(result.describe())
    return result.exit_code


def cmd_runs(args) -> int:
    from scalinglab.studies.load import export_runs

    text = export_runs(args.db, fmt=args.format, study=args.study, family=args.family, status=args.status)
    if args.out:
        from pathlib import Path

        from scalinglab.safe_io import write_text_atomic

        out = Path(args.out)
        write_text_atomic(out.parent, out.name, text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_studies(args) -> int:
    from scalinglab.studies.load import list_studies

    table = list_studies(args.db)
    print(table.to_string(index=False) if len(table) else f"{args.db} holds no studies")
    return 0


def cmd_peak(args) -> int:
    from scalinglab.provenance import default_precision, native_bf16
    from scalinglab.sweep.peak import machine_peak

    peak = machine_peak(refresh=args.refresh)
    print(f"peak conv throughput on {peak.threads} threads: fp32 {peak.fp32_gflops:.0f} GFLOP/s, "
          f"bf16 {peak.bf16_gflops:.0f} GFLOP/s")
    print(f"precision auto trains in {default_precision()} here "
          f"({'native' if native_bf16() else 'no native'} bf16 dot products)")
    return 0
