"""Is bf16 good enough for a scaling study? The check behind the default precision.

Runs the quick preset's grid (9 widths x 7 fractions x 2 seeds) in fp32 and in
bf16 autocast, fits both with the study's own analysis, and asks whether the
frontier exponent alpha and the compute-optimal size exponent a agree within
their bootstrap intervals. bf16 is the default only if they do.

    python bench/precision_check.py --db bench/results/precision.db
"""

import argparse
import json
import time
from pathlib import Path

from scalinglab.families.mnist.study import sweep_mnist
from scalinglab.studies.analysis import analyse_study
from scalinglab.studies.load import load_study
from scalinglab.families.mnist.grid import MnistGrid, preset


def intervals_overlap(a, b) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="precision.db")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "precision_check.json"))
    args = p.parse_args()
    results = {}
    for precision in ("fp32", "bf16"):
        grid = MnistGrid.from_dict({**preset("quick").to_dict(), "precision": precision})
        start = time.perf_counter()
        summary = sweep_mnist(grid, db=args.db, name=f"precision-{precision}", workers=args.workers)
        wall = time.perf_counter() - start
        (group,) = analyse_study(load_study(args.db, f"precision-{precision}"), n_resamples=500).groups
        frontier, a1 = group.fits["frontier"].intervals, group.fits["approach1"].intervals
        results[precision] = {
            "sweep_wall_s": wall, "runs_trained": summary.ran,
            **{k: frontier[k].estimate for k in ("alpha", "E")}, "a": a1["a"].estimate,
            **{f"{k}_ci": [frontier[k].lo, frontier[k].hi] for k in ("alpha", "E")},
            "a_ci": [a1["a"].lo, a1["a"].hi],
        }
    f, b = results["fp32"], results["bf16"]
    agree = {k: intervals_overlap(f[f"{k}_ci"], b[f"{k}_ci"]) for k in ("alpha", "a", "E")}
    for k in ("alpha", "a", "E"):
        print(f"{k:6s} fp32 {f[k]:.3f} [{f[k + '_ci'][0]:.3f}, {f[k + '_ci'][1]:.3f}]   "
              f"bf16 {b[k]:.3f} [{b[k + '_ci'][0]:.3f}, {b[k + '_ci'][1]:.3f}]   "
              f"{'agree' if agree[k] else 'DISAGREE'}")
    print(f"sweep wall time: fp32 {f['sweep_wall_s']:.0f} s, bf16 {b['sweep_wall_s']:.0f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({**results, "agree": agree}, indent=1))


if __name__ == "__main__":
    main()
