"""Fitting speed: variable projection, the batched 4,500-start fit and one scipy call per start; a bootstrap.

Claims (docs/benchmarks.md, "Fitting speed (issue 3)" and "Variable
projection (issue 13)"): on the 240 Chinchilla points of Besiroglu et al.
2024, scalinglab's batched L-BFGS reaches the same optimum as the
straightforward recipe -- one ``scipy.optimize.minimize`` L-BFGS-B call per
start -- at least 50x faster; variable projection (scalinglab.fit.varpro)
reaches it at least 300x faster; a 1,000-resample bootstrap takes under a
second.

    python bench/fit_speed.py                      # full baselines (several minutes)
    python bench/fit_speed.py --baseline-starts 450   # time a random 10% of the starts and extrapolate

Baselines: "numeric" is the recipe as published (Epoch's notebook: the Huber
objective, no gradient, so scipy differences it numerically); "analytic" hands
scipy our analytic gradient. BLAS is pinned to one thread before numpy loads:
scipy's L-BFGS-B calls BLAS on 5-vectors, and on a busy machine OpenBLAS
threads make each call ~100x slower, which would flatter the batched fit.
Times are CPU seconds of this process (time.process_time), which a shared,
busy machine distorts less than wall-clock time; wall time is printed too.
"""

from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from scalinglab.core.laws import chinchilla_log  # noqa: E402
from scalinglab.core.losses import huber_objective  # noqa: E402
from scalinglab.fit import HOFFMANN_GRID, ChinchillaFit, bootstrap, drop_highest_loss, load_runs  # noqa: E402
from scalinglab.fit.parametric import grid_product  # noqa: E402
from scalinglab.fit.varpro import fit_varpro  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "chinchilla_svg_extracted_data.csv"
NAMES = ("E", "A", "B", "alpha", "beta")


def one_start_objective(log_n, log_d, log_y):
    """The same summed-Huber objective for a single parameter vector, as a per-start scipy recipe uses it."""
    def f(theta):
        ll, _ = chinchilla_log(theta[None], log_n, log_d)
        return float(huber_objective(ll, log_y)[0][0])

    def f_and_grad(theta):
        ll, vjp = chinchilla_log(theta[None], log_n, log_d)
        val, psi = huber_objective(ll, log_y)
        return float(val[0]), vjp(psi)[0]
    return f, f_and_grad


def baseline(starts, f, f_and_grad, analytic: bool):
    """One scipy L-BFGS-B call per start (default options); keep the lowest objective, as the recipe does."""
    best_fun, best_x, n_success = np.inf, None, 0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for x0 in starts:
            if analytic:
                res = minimize(f_and_grad, x0, jac=True, method="L-BFGS-B")
            else:
                res = minimize(f, x0, method="L-BFGS-B")
            n_success += bool(res.success)
            if res.fun < best_fun:
                best_fun, best_x = float(res.fun), res.x
    return best_fun, best_x, n_success


def params_of(theta):
    return dict(zip(NAMES, [*np.exp(theta[:3]), *theta[3:]]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--baseline-starts", type=int, default=4500,
                    help="time the baselines on this many random starts and extrapolate to 4,500 (default: all)")
    ap.add_argument("--skip-numeric", action="store_true", help="skip the (slow) numeric-gradient baseline")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3, help="batched-fit repetitions; the fastest is reported")
    args = ap.parse_args()

    runs = drop_highest_loss(load_runs(args.data), 5)
    print(f"data: {len(runs)} runs; python {platform.python_version()}, numpy {np.__version__}, "
          f"scipy {scipy.__version__}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    times = []
    for _ in range(args.repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fit = ChinchillaFit().fit(runs)
        times.append((time.process_time() - c0, time.perf_counter() - w0))
    t_ours, w_ours = min(times)
    print(f"batched:  {fit.n_starts_} starts in {t_ours:.2f} s CPU ({w_ours:.2f} s wall; CPU per repeat: "
          f"{', '.join(f'{t:.2f}' for t, _ in times)}); objective {fit.objective_:.10g}; "
          f"{fit.n_converged_starts_} starts met scipy's stopping rules in screening")
    print("          " + ", ".join(f"{k}={v:.6g}" for k, v in fit.params_.items()))

    vtimes = []
    for _ in range(args.repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        vp = fit_varpro(runs, "chinchilla")
        vtimes.append((time.process_time() - c0, time.perf_counter() - w0))
    t_vp, w_vp = min(vtimes)
    worst_vp = max(abs(vp.params_[k] / fit.params_[k] - 1) for k in NAMES)
    print(f"varpro:   {t_vp:.3f} s CPU ({w_vp:.3f} s wall; CPU per repeat: "
          f"{', '.join(f'{t:.3f}' for t, _ in vtimes)}); objective {vp.objective_:.10g}; {vp.n_starts_} polished "
          f"start(s); max param rel. diff from batched {worst_vp:.2e}; {t_ours / t_vp:.1f}x faster than batched")
    print("          " + ", ".join(f"{k}={v:.6g}" for k, v in vp.params_.items()))

    starts = grid_product(HOFFMANN_GRID, ChinchillaFit.theta_names)     # the same 4,500 starts
    rng = np.random.default_rng(0)
    if args.baseline_starts < len(starts):
        starts = starts[rng.choice(len(starts), args.baseline_starts, replace=False)]
    scale = 4500 / len(starts)
    f, fg = one_start_objective(np.log(runs["N"].to_numpy()), np.log(runs["D"].to_numpy()),
                                np.log(runs["loss"].to_numpy()))
    for label, analytic in (("analytic", True), ("numeric", False)):
        if label == "numeric" and args.skip_numeric:
            continue
        c0, w0 = time.process_time(), time.perf_counter()
        best_fun, best_x, n_ok = baseline(starts, f, fg, analytic)
        dt, wall = time.process_time() - c0, time.perf_counter() - w0
        p = params_of(best_x)
        worst = max(abs(p[k] / fit.params_[k] - 1) for k in NAMES)
        extrap = " (extrapolated)" if scale != 1 else ""
        print(f"scipy/{label}: {len(starts)} starts in {dt:.1f} s CPU ({wall:.1f} s wall) -> {dt * scale:.1f} s CPU "
              f"for 4,500{extrap}; "
              f"objective {best_fun:.10g}; max param rel. diff from batched {worst:.2e}; "
              f"speedup: batched {dt * scale / t_ours:.0f}x, varpro {dt * scale / t_vp:.0f}x; "
              f"scipy success flag on {n_ok}/{len(starts)}")
        print("          " + ", ".join(f"{k}={v:.6g}" for k, v in p.items()))

    c0, w0 = time.process_time(), time.perf_counter()
    boot = bootstrap(fit, runs, n_resamples=args.resamples, random_state=0)
    t_boot, w_boot = time.process_time() - c0, time.perf_counter() - w0
    print(f"bootstrap: {args.resamples} resamples in {t_boot:.2f} s CPU ({w_boot:.2f} s wall), {boot.n_failed} failed; "
          + ", ".join(f"se({k})={boot.se[k]:.4g}" for k in (*NAMES, "a")))
    print(f"load average at the end {', '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
