"""A scaling study of your own model from Python, as in a notebook: sweep, fit, report.

    cd examples && python mlp_study.py            # ~1 minute on 2 cores

Every step is a library call that returns a DataFrame or a result object, so
each cell of a notebook can look at what the previous one made.
"""

from pathlib import Path

import scalinglab as sl
from mlp_family import FAMILY

HERE = Path(__file__).parent
DB = HERE / "mlp.db"

# 1. The design: hidden units x training images x seeds, read from TOML (or built with sl.grid_configs).
design, name = sl.read_design_file(HERE / "mlp_design.toml", FAMILY)

# 2. Sweep it into the run store; re-running resumes, finished runs are never retrained.
name, sweep = sl.sweep_study(FAMILY, design, db=DB, name=name, workers=0)
print(sweep.describe())

# 3. The study as seed-mean points: one row per (hidden, examples), columns N, D, C, loss, loss_sd, ...
study = sl.load_study(DB, name)
print(study.points[["hidden", "examples", "N", "D", "C", "loss", "loss_sd"]].to_string(index=False))

# 4. Any law on its own, with bootstrap intervals (the same numbers `scalinglab fit` prints) ...
fit = sl.fit_law(study.points, "chinchilla", n_resamples=200, at_flops=[1e10])
for key in ("alpha", "beta", "E"):
    iv = fit.intervals[key]
    print(f"{key}: {iv.estimate:.3f} [{iv.lo:.3f}, {iv.hi:.3f}] ({iv.method})")

# 5. ... or the whole analysis and the HTML report, as `scalinglab study` writes them.
analysis = sl.analyse_study(study, n_resamples=200)
print(analysis.summary_text())
html = sl.write_study_report(db=DB, study=name, out=HERE / "mlp-report", analysis=analysis)
print(f"report: {html}")
