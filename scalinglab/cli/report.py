"""``scalinglab report``: argument parsing and printing only; the report lives in scalinglab.report."""

from __future__ import annotations


def register(sub, study_sub) -> None:
    p = sub.add_parser(
        "report", help="write a study's HTML report and figures",
        description="Analyse one study of a run database (any family: MNIST, LM or your own) and write "
                    "OUT/report.html (self-contained, opens offline), OUT/figures/*.png and *.svg, "
                    "OUT/report.json and each group's points as CSV, from which `scalinglab fit` gives the "
                    "same numbers.")
    p.add_argument("--db", default="runs.db", help="run database (default: runs.db)")
    p.add_argument("--out", default="report", help="output folder (default: report)")
    p.add_argument("--study", help="study name (required when the database holds several studies)")
    p.add_argument("--family", help="only consider studies of this family (e.g. mnist_cnn, lm)")
    p.add_argument("--bootstrap", type=int, default=200, metavar="K",
                   help="bootstrap resamples behind every interval (default 200, as `scalinglab fit`)")
    p.add_argument("--level", type=float, default=0.95, help="interval coverage (default 0.95)")
    p.add_argument("--grid", choices=("hoffmann", "coarse"), default="hoffmann",
                   help="Chinchilla start grid: hoffmann (4,500 starts, default) or coarse (243)")
    p.add_argument("--no-static", action="store_true", help="skip the PNG/SVG copies of the figures")
    p.set_defaults(func=run_report)


def run_report(args) -> int:
    from scalinglab.report import write_study_report

    path = write_study_report(db=args.db, study=args.study, family=args.family, out=args.out,
                              n_resamples=args.bootstrap, level=args.level, chinchilla_starts=args.grid,
                              static=not args.no_static)
    print(f"report written to {path}")
    return 0
