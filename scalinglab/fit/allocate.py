"""Compute-optimal allocation under published or fitted scaling laws.

Given a training budget C (FLOPs, with C = 6 N D throughout), how many
parameters N and tokens D? ``compute_optimal`` answers under a named
published law or a fit saved by ``scalinglab fit --save``;
``inference_optimal`` adds the inference cost of serving T tokens and
minimises total FLOPs 6 N D + 2 N T at the loss the training-optimal model
reaches (Sardana et al. 2023, "Beyond Chinchilla-Optimal", sec. 2).

Published laws (see PUBLISHED_LAWS for the exact values and sources):

* ``hoffmann2022``: Hoffmann et al. 2022, eq. (10), Approach 3, as printed.
* ``hoffmann2022-unrounded``: the same fit before rounding, from the comment
  after eq. (10) in the arXiv LaTeX source of 2203.15556 (log-space offsets
  0.5267228, 6.0073404, 6.0179186; slopes 0.33917084, 0.2849083).
* ``epoch2024``: Besiroglu et al. 2024, the headline refit of Approach 3 on
  the 240 runs recovered from Hoffmann et al.'s Figure 4.
* ``kaplan2020``: Kaplan et al. 2020, L(N, D) of eq. (1.5) with alpha_N,
  N_c of eq. (1.1) and alpha_D, D_c of eq. (1.2); compute-optimal size
  N_opt = 1.3e9 (C / 1 PF-day)^0.73 (eq. 6.1, Fig. 14, Table 5 of App. A),
  D_opt = C / (6 N_opt).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.optimize import minimize_scalar

from scalinglab.core import laws
from scalinglab.errors import DataError, FitError
from scalinglab.fit.data_constrained import MUENNIGHOFF2023, DataConstrainedLaw

PF_DAY = 1e15 * 24 * 3600      # FLOPs in one petaflop/s-day (Kaplan et al. 2020, sec. 1.3)


class Law(Protocol):
    """What allocation needs from a law."""

    def compute_optimal(self, flops: float) -> tuple[float, float]: ...
    def loss_at(self, N: float, D: float, flops: float) -> float | None: ...


@dataclass(frozen=True, slots=True)
class ChinchillaLaw:
    """L(N, D) = E + A/N^alpha + B/D^beta; its optimum is closed-form (Hoffmann et al. 2022, eq. 4)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def loss(self, N, D):
        return laws.chinchilla(N, D, self.E, self.A, self.B, self.alpha, self.beta)

    def loss_at(self, N, D, flops):
        return float(self.loss(N, D))

    def compute_optimal(self, flops):
        s = self.alpha + self.beta
        G = (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / s)
        return G * (flops / 6.0) ** (self.beta / s), (flops / 6.0) ** (self.alpha / s) / G

    def min_params(self, loss: float) -> float:
        """Smallest N that can reach ``loss`` with unlimited data."""
        return (self.A / (loss - self.E)) ** (1.0 / self.alpha) if loss > self.E else math.inf

    def tokens_for_loss(self, N, loss):
        gap = loss - self.E - self.A * np.power(N, -self.alpha)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gap > 0, (self.B / gap) ** (1.0 / self.beta), np.inf)


@dataclass(frozen=True, slots=True)
class KaplanLaw:
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020, eq. 1.5).

    With ``n_opt_at_pf_day`` and ``n_opt_exponent`` the compute-optimal size is
    Kaplan's empirical N_opt = n_opt_at_pf_day (C / PF-day)^n_opt_exponent;
    without, it is the N minimising L(N, C/(6N)), which is closed-form:
    N^(r+1) = r N_c^r C / (6 D_c), r = alpha_N / alpha_D.
    """

    N_c: float
    D_c: float
    alpha_N: float
    alpha_D: float
    n_opt_at_pf_day: float | None = None
    n_opt_exponent: float | None = None

    def loss(self, N, D):
        return laws.kaplan(N, D, self.N_c, self.D_c, self.alpha_N, self.alpha_D)

    def loss_at(self, N, D, flops):
        return float(self.loss(N, D))

    def compute_optimal(self, flops):
        if self.n_opt_at_pf_day is not None and self.n_opt_exponent is not None:
            N = self.n_opt_at_pf_day * (flops / PF_DAY) ** self.n_opt_exponent
        else:
            r = self.alpha_N / self.alpha_D
            N = (r * self.N_c ** r * flops / (6.0 * self.D_c)) ** (1.0 / (r + 1.0))
        return N, flops / (6.0 * N)

    def min_params(self, loss: float) -> float:
        return self.N_c * loss ** (-1.0 / self.alpha_N)

    def tokens_for_loss(self, N, loss):
        n_term = np.power(self.N_c / np.asarray(N, dtype=float), self.alpha_N / self.alpha_D)
        gap = loss ** (1.0 / self.alpha_D) - n_term
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gap > 0, self.D_c / gap, np.inf)


@dataclass(frozen=True, slots=True)
class AllocationRule:
    """N_opt = N_coef C^a from Approach 1 or 2, with an optional loss law L(C) = E + A C^-alpha.

    D_opt = D_coef C^b when the fit measured it (the runs' own D), else C / (6 N_opt).
    """

    N_coef: float
    a: float
    loss_E: float | None = None
    loss_A: float | None = None
    loss_alpha: float | None = None
    D_coef: float | None = None
    b: float | None = None

    def compute_optimal(self, flops):
        N = self.N_coef * flops ** self.a
        if self.D_coef is not None and self.b is not None:
            return N, self.D_coef * flops ** self.b
        return N, flops / (6.0 * N)

    def loss_at(self, N, D, flops):
        if self.loss_E is None:
            return None
        return float(laws.power_law(flops, self.loss_E, self.loss_A, self.loss_alpha))


@dataclass(frozen=True, slots=True)
class PublishedLaw:
    name: str
    law: Any
    source: str


PUBLISHED_LAWS: dict[str, PublishedLaw] = {
    "hoffmann2022": PublishedLaw(
        "hoffmann2022", ChinchillaLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
        "Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', eq. (10), App. D.2 (as printed)"),
    "hoffmann2022-unrounded": PublishedLaw(
        "hoffmann2022-unrounded",
        ChinchillaLaw(E=math.exp(0.5267228), A=math.exp(6.0073404), B=math.exp(6.0179186),
                      alpha=0.33917084, beta=0.2849083),
        "Hoffmann et al. 2022, eq. (10) before rounding: log-space values in the comment after eq. (10) of the "
        "arXiv LaTeX source (2203.15556), also the 'true_params' of Besiroglu et al.'s notebook; "
        "A = 406.40, B = 410.72, E = 1.6934"),
    "epoch2024": PublishedLaw(
        "epoch2024", ChinchillaLaw(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658),
        "Besiroglu et al. 2024, 'Chinchilla Scaling: A replication attempt' (arXiv:2404.10102), headline fit"),
    "kaplan2020": PublishedLaw(
        "kaplan2020",
        KaplanLaw(N_c=8.8e13, D_c=5.4e13, alpha_N=0.076, alpha_D=0.095, n_opt_at_pf_day=1.3e9,
                  n_opt_exponent=0.73),
        "Kaplan et al. 2020, 'Scaling Laws for Neural Language Models': L(N, D) eq. (1.5) with eqs. (1.1), (1.2); "
        "N_opt = 1.3e9 (C / PF-day)^0.73, eq. (6.1) and Table 5; N excludes embeddings"),
    "muennighoff2023": PublishedLaw(
        "muennighoff2023", DataConstrainedLaw(**MUENNIGHOFF2023),
        "Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models', eqs. (5)-(7), the released fit "
        "(huggingface/datablations): R*_D = 15.39, R*_N = 5.31, alpha = beta = 0.353; unlimited unique data "
        "unless given (DataConstrainedLaw.with_unique_tokens)"),
}


@dataclass(frozen=True, slots=True)
class Allocation:
    """The training-compute-optimal split of a budget."""

    law: str
    flops: float
    N_opt: float
    D_opt: float
    tokens_per_param: float
    loss: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class InferenceAllocation:
    """The inference-aware optimum (Sardana et al. 2023) and what it saves over the Chinchilla-optimal model."""

    law: str
    flops: float                  # the training budget that fixes the target loss
    inference_tokens: float
    loss: float                   # target loss: that of the training-optimal model
    N: float
    D: float
    tokens_per_param: float
    train_flops: float            # 6 N D
    inference_flops: float        # 2 N T
    total_flops: float
    compute_optimal_total_flops: float    # C + 2 N_opt T
    flops_saved: float
    flops_saved_fraction: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_POSITIVE = {"chinchilla": ("E", "A", "B", "alpha", "beta"), "kaplan": ("N_c", "D_c", "alpha_N", "alpha_D")}


def _saved_number(d: dict, key: str, where: str, *, positive: bool = True) -> float:
    """A saved fit's number, refused unless it is a finite (positive) JSON number."""
    if key not in d:
        raise FitError(f"saved fit lacks {where}{key!r}; re-save it with `scalinglab fit --save`")
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise FitError(f"saved fit: {where}{key!r} must be a number, got {json.dumps(v)[:40]}; "
                       "re-save it with `scalinglab fit --save`")
    v = float(v)
    if not math.isfinite(v) or (positive and v <= 0):
        raise FitError(f"saved fit: {where}{key!r} = {v:g} is not {'a positive' if positive else 'a finite'} "
                       "number; re-save it with `scalinglab fit --save`")
    return v


def law_from_dict(d: dict[str, Any]) -> Any:
    """An allocation law from a saved fit (``scalinglab fit --save``), every field checked.

    Reads the FitResult schema (``params`` and ``derived``); a flat dict with
    the parameters at the top level (older saves) is read too.
    """
    if not isinstance(d, dict):
        raise FitError("a saved fit is a JSON object with a 'law' key")
    kind = d.get("law")
    if not isinstance(kind, str):
        raise FitError(f"unknown law {json.dumps(kind)[:40]} in the saved fit: 'law' must be a name such as "
                       "chinchilla, kaplan, frontier, approach1 or isoflop")
    if "schema_version" in d:
        params, derived = d.get("params"), d.get("derived")
        if not isinstance(params, dict) or not isinstance(derived, dict):
            raise FitError("saved fit: 'params' and 'derived' must be JSON objects; re-save it with "
                           "`scalinglab fit --save`")
        where_p, where_d = "params.", "derived."
    else:
        params = derived = d
        where_p = where_d = ""
    if kind in _POSITIVE:
        values = {k: _saved_number(params, k, where_p) for k in _POSITIVE[kind]}
        return ChinchillaLaw(**values) if kind == "chinchilla" else KaplanLaw(**values)
    if kind in ("frontier", "isoflop", "approach1"):
        if "schema_version" not in d:
            raise FitError(f"this {kind} fit was saved in an older format; re-save it with `scalinglab fit --save`")
        if "N_coef" not in params:
            raise FitError(f"this {kind} fit has no compute-optimal exponents (the runs lacked N and D, or fewer "
                           "than 2 budgets had a minimum), so it cannot split compute between N and D")
        rule = dict(N_coef=_saved_number(params, "N_coef", where_p), a=_saved_number(derived, "a", where_d))
        if "D_coef" in params and "b" in derived:
            rule.update(D_coef=_saved_number(params, "D_coef", where_p), b=_saved_number(derived, "b", where_d))
        if kind == "frontier":
            rule.update(loss_E=_saved_number(params, "E", where_p), loss_A=_saved_number(params, "A", where_p),
                        loss_alpha=_saved_number(params, "alpha", where_p))
        return AllocationRule(**rule)
    if kind == "data-constrained":
        return DataConstrainedLaw(**{k: _saved_number(params, k, where_p) for k in laws.DATA_CONSTRAINED_PARAMS})
    if kind == "power":
        raise FitError("a one-variable power law cannot split compute between N and D; "
                       "fit --law chinchilla or kaplan and save that")
    raise FitError(f"unknown law {str(kind)[:40]!r} in the saved fit; expected chinchilla, kaplan, frontier, "
                   "approach1, isoflop or data-constrained")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number a fit can hold")


def read_saved_fit(path: Path) -> dict[str, Any]:
    """The JSON object of a saved fit; one-line DataError for a directory, bad JSON, NaN or deep nesting."""
    if path.is_dir():
        raise DataError(f"{path} is a directory; give the JSON file written by `scalinglab fit --save`")
    try:
        d = json.loads(path.read_text(), parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); save fits with `scalinglab fit --save`") from None
    except ValueError as exc:
        raise DataError(f"{path} holds {exc}; save fits with `scalinglab fit --save`") from None
    except RecursionError:
        raise DataError(f"{path} is nested too deeply to be a saved fit") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if not isinstance(d, dict):
        raise DataError(f"{path} does not hold a saved fit (expected a JSON object with a 'law' key)")
    return d


def load_law(spec: str, *, with_result: bool = False):
    """A published law by name, or a fit saved as JSON: (name, law), plus the saved dict if ``with_result``."""
    if spec in PUBLISHED_LAWS:
        return (spec, PUBLISHED_LAWS[spec].law, None) if with_result else (spec, PUBLISHED_LAWS[spec].law)
    path = Path(spec)
    if path.suffix.lower() == ".json" or path.exists():
        if not path.exists():
            raise DataError(f"law file not found: {path}")
        d = read_saved_fit(path)
        law = law_from_dict(d)
        return (str(path), law, d) if with_result else (str(path), law)
    names = ", ".join(PUBLISHED_LAWS)
    raise FitError(f"unknown law {spec!r}: use one of {names}, or a fit saved with `scalinglab fit --save FILE.json`")


def with_unique_tokens(law: Any, unique_tokens: float | None) -> Any:
    """``law`` limited to ``unique_tokens`` of unique data (None: ``law`` as it is); only data-constrained laws."""
    if unique_tokens is None:
        return law
    if not isinstance(law, DataConstrainedLaw):
        raise FitError("--unique-tokens needs a data-constrained law (muennighoff2023, or a fit saved with "
                       "`scalinglab fit --law data-constrained --save`); this law has no notion of repeated data")
    return law.with_unique_tokens(unique_tokens)


def allocate_with_intervals(law: Any, flops: float, saved: dict | None, *, name: str = "law",
                            unique_tokens: float | None = None):
    """:func:`compute_optimal`, and percentile intervals from a saved fit's bootstrap draws (``{}`` without).

    ``unique_tokens``: the unique data there is (a data-constrained law only), for the estimate and every draw.
    """
    law = with_unique_tokens(law, unique_tokens)
    alloc = compute_optimal(law, flops, name=name)
    draws = (saved or {}).get("samples") if isinstance(saved, dict) else None
    if not isinstance(draws, dict) or not draws.get("rows"):
        return alloc, {}
    cols, rows = draws.get("columns"), draws.get("rows")
    if not isinstance(cols, list) or not all(isinstance(r, list) and len(r) == len(cols) for r in rows):
        raise FitError("saved fit: 'samples' must hold 'columns' and equally long 'rows'; re-save the fit")
    level = float(((saved.get("method") or {}).get("level")) or 0.95)
    values: dict[str, list[float]] = {"N_opt": [], "D_opt": [], "tokens_per_param": [], "loss": []}
    for row in rows:
        rec = dict(zip(cols, row))
        if rec.get("converged") is False:
            continue
        params = {k: v for k, v in rec.items() if k != "converged"}
        try:
            with np.errstate(all="ignore"):
                drawn = law_from_dict({**saved, "params": {**saved["params"], **params},
                                       "derived": {**saved["derived"], **_derived_exponents(params)}})
                one = compute_optimal(with_unique_tokens(drawn, unique_tokens), flops)
        except (FitError, ZeroDivisionError, OverflowError, ValueError):
            continue
        for k in values:
            v = getattr(one, k)
            if v is not None and math.isfinite(v):
                values[k].append(v)
    out = {}
    for k, v in values.items():
        if len(v) >= 2:
            lo, hi = np.percentile(v, [50 * (1 - level), 50 * (1 + level)])
            out[k] = {"lo": float(lo), "hi": float(hi), "se": float(np.std(v, ddof=1)), "level": level,
                      "method": "bootstrap", "n_resamples": len(rows), "n_failed": len(rows) - len(v)}
    return alloc, out


def _derived_exponents(params: dict) -> dict:
    """The allocation exponents a resample's draw carries (Approach 1/2 store a, b with the coefficients)."""
    return {k: params[k] for k in ("a", "b") if k in params}


def _check_flops(flops: float) -> float:
    flops = float(flops)
    if not math.isfinite(flops) or flops <= 0:
        raise FitError(f"--flops must be a positive number of FLOPs, got {flops}")
    return flops


def compute_optimal(law: Any, flops: float, *, name: str = "law") -> Allocation:
    """Training-compute-optimal N, D (C = 6 N D), tokens per parameter and predicted loss."""
    flops = _check_flops(flops)
    N, D = law.compute_optimal(flops)
    return Allocation(law=name, flops=flops, N_opt=float(N), D_opt=float(D), tokens_per_param=float(D / N),
                      loss=law.loss_at(N, D, flops))


def inference_optimal(law: Any, flops: float, inference_tokens: float, *, name: str = "law") -> InferenceAllocation:
    """Minimise 6 N D + 2 N T subject to L(N, D) = loss of the training-optimal model for ``flops``.

    Sardana et al. 2023, eq. (1)-(2): substitute D(N) from the loss constraint
    and minimise over log N (a grid, then Brent's method on the best bracket).
    """
    T = float(inference_tokens)
    if not math.isfinite(T) or T < 0:
        raise FitError(f"--inference-tokens must be a non-negative number of tokens, got {inference_tokens}")
    if not hasattr(law, "tokens_for_loss"):
        raise FitError("the inference-aware optimum needs a loss law L(N, D) (chinchilla or kaplan), "
                       "not an allocation rule")
    base = compute_optimal(law, flops, name=name)
    target = base.loss
    n_lo = law.min_params(target)
    lo, hi = math.log(n_lo) + 1e-9, math.log(base.N_opt) + math.log(1e3)

    def total(log_n):
        N = np.exp(log_n)
        return 6.0 * N * law.tokens_for_loss(N, target) + 2.0 * N * T

    grid = np.linspace(lo, hi, 2001)
    with np.errstate(over="ignore", invalid="ignore"):
        vals = total(grid)
    k = int(np.nanargmin(vals))
    res = minimize_scalar(lambda v: float(total(np.array(v))), bounds=(grid[max(k - 1, 0)], grid[min(k + 1, 2000)]),
                          method="bounded", options={"xatol": 1e-10})
    N = float(np.exp(res.x))
    D = float(law.tokens_for_loss(N, target))
    train, infer = 6.0 * N * D, 2.0 * N * T
    reference = base.flops + 2.0 * base.N_opt * T
    return InferenceAllocation(law=name, flops=base.flops, inference_tokens=T, loss=float(target), N=N, D=D,
                               tokens_per_param=D / N, train_flops=train, inference_flops=infer,
                               total_flops=train + infer, compute_optimal_total_flops=reference,
                               flops_saved=reference - (train + infer),
                               flops_saved_fraction=(reference - (train + infer)) / reference)
