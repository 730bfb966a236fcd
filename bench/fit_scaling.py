"""Fit time and peak memory against the number of runs (1e3 to 1e6): power law and 4,500-start Chinchilla.

Claim (docs/benchmarks.md, "Fits on large tables (issue 16, case 8)"): time
grows about linearly with the number of runs and peak memory stays bounded;
a Chinchilla fit on 1e6 runs takes under a minute, a power law on 1e6 runs
under 10 s. Before: 510 s for a power law on 1e6 points, >400 s for
Chinchilla on 1e5.

    python bench/fit_scaling.py                 # 1e3, 1e4, 1e5, 1e6
    python bench/fit_scaling.py --sizes 1000 100000

Peak memory is what tracemalloc saw numpy and Python allocate during the fit
(the input table itself excluded); times are CPU seconds of this process
with wall time beside them, one thread for BLAS.
"""

from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from scalinglab.core import laws  # noqa: E402
from scalinglab.fit import ChinchillaFit, PowerLawFit  # noqa: E402

CHINCHILLA = dict(E=1.7, A=400.0, B=1500.0, alpha=0.34, beta=0.30)
POWER = dict(E=2.0, A=3.0e3, alpha=0.2)


def tables(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    N, D = 10 ** rng.uniform(7, 9.5, n), 10 ** rng.uniform(8.5, 11.5, n)
    chin = pd.DataFrame({"N": N, "D": D, "loss": laws.chinchilla(N, D, **CHINCHILLA) * np.exp(0.01 * rng.standard_normal(n))})
    C = 10 ** rng.uniform(15, 21, n)
    power = pd.DataFrame({"C": C, "loss": laws.power_law(C, **POWER) * np.exp(0.01 * rng.standard_normal(n))})
    return chin, power


def measure(make, runs):
    tracemalloc.start()
    c0, w0 = time.process_time(), time.perf_counter()
    fit = make().fit(runs)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return fit, cpu, wall, peak / 2 ** 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    args = ap.parse_args()
    print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    print("| runs | law | CPU s | wall s | peak MiB | objective / run | alpha | converged |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        chin, power = tables(n)
        for label, make, runs in (("power law", PowerLawFit, power), ("Chinchilla, 4,500 starts", ChinchillaFit, chin)):
            fit, cpu, wall, peak = measure(make, runs)
            print(f"| {n:,} | {label} | {cpu:.2f} | {wall:.2f} | {peak:.0f} | {fit.objective_ / n:.3e} | "
                  f"{fit.alpha_:.4f} | {fit.converged_} |", flush=True)
    print(f"load average at the end {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
