"""CLI: ``sweep mnist`` and ``study mnist``."""

from __future__ import annotations

import argparse


def register_sweep(sweep_sub) -> None:
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


def register(sub, study_sub) -> None:
    st = study_sub.add_parser("mnist", help="the course exercise: sweep, frontier fit, report",
                              description="Run a preset MNIST sweep, then fit the compute-efficient "
                                          "frontier and the compute-optimal width.")
    st.add_argument("--preset", default="quick", help="smoke | quick | full (default: quick)")
    _common(st)
    st.add_argument("--out", help="folder for the analysis JSON and plots (default: study-<preset>)")
    st.add_argument("--no-report", action="store_true", help="skip the HTML report")
    st.set_defaults(func=cmd_study)
    from scalinglab.cli.plan import add_adaptive_options

    add_adaptive_options(st)


def _common(p: argparse.ArgumentParser) -> None:
    from scalinglab.cli.study import add_run_options

    add_run_options(p)
    p.add_argument("--lr", help="base LR (layer LR = lr/sqrt(fan_in)), a comma list to tune over, "
                                "or 'tune' for the default grid")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                   help="autocast (default auto: bf16 where the CPU has native bf16, else fp32)")
    p.add_argument("--train-limit", type=int, help="use only the first K training images as the full set")
    p.add_argument("--data", help="folder of MNIST IDX files (default: the built-in copy)")
    p.add_argument("--device", help="cpu (default) or cuda / cuda:N: train on a GPU where torch sees one")


def _grid_overrides(args) -> dict:
    from scalinglab.families.mnist.grid import tune_lrs

    over = {}
    for flag, key in (("widths", "widths"), ("fractions", "fractions"), ("seeds", "seeds"),
                      ("dropout", "dropouts")):
        if getattr(args, flag, None) is not None:
            over[key] = getattr(args, flag)
    if args.lr is not None:
        over["lrs"] = tune_lrs() if args.lr.strip() == "tune" else args.lr
    for key in ("batch_size", "precision", "train_limit", "data", "device"):
        if getattr(args, key) is not None:
            over[key] = getattr(args, key)
    return over


def cmd_sweep(args) -> int:
    from scalinglab.cli.study import run_kwargs
    from scalinglab.families.mnist.grid import PRESETS, MnistGrid, mnist_design, read_grid_file
    from scalinglab.studies.pipeline import sweep_study

    base = read_grid_file(args.config) if args.config else {}
    full = PRESETS["full"]
    defaults = {"widths": full.widths, "fractions": full.fractions}
    grid = MnistGrid.from_dict({**defaults, **base, **_grid_overrides(args)},
                               origin=args.config or "grid")
    name, summary = sweep_study("mnist_cnn", mnist_design(grid), name=args.name, **run_kwargs(args))
    print(f"study {name}: {summary.describe()}")
    return 1 if summary.failed else 0


def cmd_study(args) -> int:
    if args.adaptive:
        from scalinglab.cli.plan import cmd_adaptive_mnist

        return cmd_adaptive_mnist(args)
    from scalinglab.cli.study import run_kwargs
    from scalinglab.families.mnist.study import run_mnist_study

    result = run_mnist_study(args.preset, out=args.out, overrides=_grid_overrides(args),
                             report=not args.no_report, **run_kwargs(args))
    print(result.describe())
    return result.exit_code
