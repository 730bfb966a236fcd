"""Shared data for the fitting tests: the published Chinchilla points and synthetic runs from known laws.

A plain module (not conftest.py) so its name cannot collide with other test folders' helpers.
"""

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.core import laws

# CI clones the repo with ../shared beside it (this file is <repo>/tests/fit/fit_synthetic.py).
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CHINCHILLA_CSV = DATA / "chinchilla_svg_extracted_data.csv"

CHINCHILLA_TRUE = dict(E=1.7, A=400.0, B=1500.0, alpha=0.34, beta=0.30)
KAPLAN_TRUE = dict(N_c=8.8e13, D_c=5.4e13, alpha_N=0.076, alpha_D=0.095)
POWER_TRUE = dict(E=2.0, A=3.0e3, alpha=0.2)


def chinchilla_runs(seed: int = 0, noise: float = 0.005, n: int = 8, params=CHINCHILLA_TRUE) -> pd.DataFrame:
    """An n x n grid of (N, D) runs with multiplicative log-normal noise on the loss."""
    rng = np.random.default_rng(seed)
    N, D = np.meshgrid(np.logspace(7, 9.5, n), np.logspace(8.5, 11.5, n))
    N, D = N.ravel(), D.ravel()
    loss = laws.chinchilla(N, D, **params) * np.exp(noise * rng.standard_normal(N.size))
    return pd.DataFrame({"N": N, "D": D, "C": 6 * N * D, "loss": loss, "run": [f"r{i}" for i in range(N.size)]})


def isoflop_runs(seed: int = 0, noise: float = 0.002, params=CHINCHILLA_TRUE, budgets=None, width=1.5, k=7):
    """IsoFLOP sweep: per budget, k model sizes spread +-width decades... around the true optimum."""
    rng = np.random.default_rng(seed)
    budgets = np.logspace(18, 21, 7) if budgets is None else np.asarray(budgets, float)
    s = params["alpha"] + params["beta"]
    G = (params["alpha"] * params["A"] / (params["beta"] * params["B"])) ** (1 / s)
    rows = []
    for C in budgets:
        n_opt = G * (C / 6) ** (params["beta"] / s)
        for N in n_opt * np.logspace(-width / 2, width / 2, k):
            D = C / (6 * N)
            L = laws.chinchilla(N, D, **params) * np.exp(noise * rng.standard_normal())
            rows.append({"N": N, "D": D, "C": C, "loss": L})
    return pd.DataFrame(rows).assign(run=lambda d: [f"r{i}" for i in range(len(d))])


def store_db(path, runs: pd.DataFrame, configs, studies=None, keys=None) -> Path:
    """A run store of the schema's fit columns (plus a bookkeeping 'owner'): one complete run per row of
    ``runs``, ``configs[i]`` its config (a dict, or raw text), ``studies[i]`` its study (if given)."""
    keys = keys or [f"k{i}" for i in range(len(runs))]
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (key TEXT PRIMARY KEY, family TEXT, config TEXT, status TEXT, params INTEGER, "
                "flops REAL, examples INTEGER, val_loss REAL, owner TEXT)")
    con.execute("CREATE TABLE study_runs (study TEXT, key TEXT)")
    con.executemany("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?)",
                    [(k, "mnist", c if isinstance(c, str) else json.dumps(c), "complete", int(r.N), float(r.C),
                      int(r.D), float(r.loss), f"host:{i}")
                     for i, (k, c, r) in enumerate(zip(keys, configs, runs.itertuples()))])
    if studies is not None:
        con.executemany("INSERT INTO study_runs VALUES (?,?)", list(zip(studies, keys)))
    con.commit()
    con.close()
    return Path(path)


@pytest.fixture(scope="session")
def chinchilla_csv() -> Path:
    if not CHINCHILLA_CSV.exists():
        pytest.fail(f"published data not found at {CHINCHILLA_CSV} (clone ../shared beside the repo)")
    return CHINCHILLA_CSV
