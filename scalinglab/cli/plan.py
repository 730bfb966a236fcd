"""CLI: ``plan`` (propose the next runs) and the options of ``study mnist --adaptive``."""

from __future__ import annotations

import argparse
import hashlib
import json

from scalinglab.errors import ConfigError


def register(sub, study_sub) -> None:
    p = sub.add_parser("plan", help="propose the next runs that most narrow one answer's interval per FLOP",
                       description="Fit the law to the runs so far and propose the runs (N, D, seed) whose "
                                   "expected reduction of the answer's interval per FLOP is largest.")
    p.add_argument("file", metavar="FILE_OR_DB", help="runs table (.csv, .parquet) or a run store (.db)")
    _question_options(p)
    p.add_argument("--family", help="the family whose runs to choose from (mnist_cnn: the MNIST ladder's widths x "
                                    "fractions, costs from the family); default: a log grid in N and D, 6ND each")
    p.add_argument("--study", help="a run store: plan for this study's runs")
    p.add_argument("--runs", type=int, help="propose at most this many runs")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap draws of the law (default: 200)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=cmd_plan)


def _question_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--target-flops", type=float, required=required, metavar="C",
                   help="the budget C* the question is about (N_opt and loss at C*)")
    p.add_argument("--budget-flops", type=float, required=required, metavar="B",
                   help="FLOPs to spend on the new runs (adaptive study: on all its runs)")
    p.add_argument("--question", choices=("a", "n_opt", "loss"), default="a",
                   help="a: the allocation exponent N_opt ~ C^a; n_opt: N_opt at C*; loss: the loss at C* "
                        "(default: a)")


def add_adaptive_options(p: argparse.ArgumentParser) -> None:
    """``--adaptive`` and its settings, for a family's ``study`` command."""
    g = p.add_argument_group("adaptive study (plan -> sweep -> fit rounds)")
    g.add_argument("--adaptive", action="store_true",
                   help="start from a small seed design and add the runs the planner proposes, round by round")
    g.add_argument("--target-flops", type=float, metavar="C", help="the budget C* the question is about")
    g.add_argument("--budget-flops", type=float, metavar="B", help="FLOPs the whole study may spend")
    g.add_argument("--question", choices=("a", "n_opt", "loss"), default="a", help="default: a")
    g.add_argument("--target-width", type=float, help="stop once the interval is this narrow")
    g.add_argument("--runs-per-round", type=int, default=4, help="runs added per round (default: 4)")
    g.add_argument("--max-rounds", type=int, default=20, help="default: 20")


def cmd_plan(args) -> int:
    from pathlib import Path

    from scalinglab.studies.plan import plan_runs

    source, family, notes, grid = args.file, args.family, [], {}
    if Path(args.file).suffix in (".db", ".sqlite", ".sqlite3"):
        from scalinglab.store import RunStore
        from scalinglab.studies.adaptive import study_frame
        from scalinglab.studies.load import resolve_study

        name, stored_family = resolve_study(args.file, args.study)
        source = study_frame(args.file, name)
        if family is None and stored_family == "mnist_cnn":
            family = stored_family
        with RunStore(args.file, readonly=True) as store:
            grid = store.study_info(name).get("grid") or {}
        notes.append(f"study {name} ({stored_family}) in {args.file}")
    elif args.study:
        raise ConfigError("--study selects a study of a run store (.db); a table is planned as a whole")
    candidates = _candidates(family, grid)
    plan = plan_runs(source, question=args.question, target_flops=args.target_flops,
                     budget_flops=args.budget_flops, candidates=candidates, max_runs=args.runs,
                     n_resamples=args.bootstrap)
    plan.notes[:0] = notes
    if args.json:
        print(json.dumps(plan.to_dict(), indent=1))
    else:
        print(plan.describe())
    return 0


def _candidates(family: str | None, grid: dict):
    """The runs to choose from; a study's recorded grid settings (batch size, precision, data) carry over."""
    if family is None:
        return None
    if family == "mnist_cnn":
        from scalinglab.studies.adaptive import mnist_candidates

        keep = ("batch_size", "precision", "train_limit", "data", "lrs")
        return mnist_candidates({k: grid[k] for k in keep if k in grid})
    raise ConfigError(f"--family {family}: the planner knows the runs of mnist_cnn only; leave --family out "
                      "to plan on a log grid in N and D (C = 6ND)")


def cmd_adaptive_mnist(args) -> int:
    """``study mnist --adaptive``: the MNIST ladder as candidates, a 3 x 3 seed design."""
    from scalinglab.cli.mnist import _grid_overrides
    from scalinglab.studies.adaptive import mnist_candidates, mnist_seed_design

    base = {k: v for k, v in _grid_overrides(args).items() if k not in ("widths", "fractions", "seeds")}
    return run_adaptive(args, "mnist_cnn", mnist_seed_design(base), mnist_candidates(base), prefix="mnist-adaptive")


def cmd_adaptive_family(args, family, design, name: str | None) -> int:
    """``study --family ... --config design.toml --adaptive``: the design's settings as candidates."""
    from scalinglab.studies.adaptive import corner_seed_design, design_candidates
    from scalinglab.sweep.family import resolve_family

    fam, _ = resolve_family(family)
    candidates = design_candidates(fam, design)
    return run_adaptive(args, family, corner_seed_design(design, candidates), candidates,
                        prefix=name or f"{fam.name}-adaptive")


def run_adaptive(args, family, seed, candidates, *, prefix: str) -> int:
    """Seed design, plan -> sweep -> fit rounds, then the study's analysis and report (one pipeline)."""
    from scalinglab.cli.study import run_kwargs
    from scalinglab.studies.adaptive import run_adaptive_study

    if args.target_flops is None or args.budget_flops is None:
        raise ConfigError("--adaptive needs --target-flops C* and --budget-flops B")
    settings = [args.question, args.target_flops, args.budget_flops, args.target_width, args.runs_per_round,
                args.max_rounds, seed.digest(), len(candidates)]
    name = f"{prefix}-" + hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:8]
    kwargs = run_kwargs(args)
    result = run_adaptive_study(family, seed, candidates, name=name, question=args.question,
                                target_flops=args.target_flops, budget_flops=args.budget_flops,
                                target_width=args.target_width, runs_per_round=args.runs_per_round,
                                max_rounds=args.max_rounds, **kwargs)
    print(result.describe())
    if not args.no_report:
        from scalinglab.studies.pipeline import run_study

        study = run_study(family, result.design, name=name, out=args.out or f"study-{name}", **kwargs)
        print(study.describe())
    return 0
