"""The ``scalinglab`` command line: it parses arguments and calls the library.

Each command group lives in its own module with a ``register(sub, study_sub)``
function; nothing but argument parsing and printing lives here.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from scalinglab.errors import ScalingLabError

# Command-group modules, in the order their commands appear in --help. Each has
# ``register(sub, study_sub)``; a family module may also have ``register_sweep(sweep_sub)``.
_GROUPS = ("study", "mnist", "lm", "fit", "plan", "data", "report", "importers")


def build_parser() -> argparse.ArgumentParser:
    from scalinglab.cli.study import register_generic

    parser = argparse.ArgumentParser(
        prog="scalinglab",
        description="Run, record, fit and show neural scaling laws.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    study = sub.add_parser("study", help="run a whole study: sweep, fits, report",
                           description="A family preset (study mnist, study lm) or your own family: "
                                       "study --family module:ATTR --config design.toml")
    sweep = sub.add_parser("sweep", help="run a grid of training runs into the database",
                           description="A family's grid (sweep mnist) or your own family: "
                                       "sweep --family module:ATTR --config design.toml")
    register_generic(study, sweep)
    study_sub = study.add_subparsers(dest="preset_family", metavar="FAMILY")
    sweep_sub = sweep.add_subparsers(dest="preset_family", metavar="FAMILY")
    for name in _GROUPS:
        try:
            module = importlib.import_module(f"scalinglab.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"scalinglab.cli.{name}":
                raise
            continue
        module.register(sub, study_sub)
        if hasattr(module, "register_sweep"):
            module.register_sweep(sweep_sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except ScalingLabError as exc:
        print(f"scalinglab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scalinglab: interrupted; finished runs are saved, re-run the same command to resume",
              file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
