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
    """N_opt = N_coef C^a from Approach 1 or 2, with an optional loss law L(C) = E + A C^-alpha."""

    N_coef: float
    a: float
    loss_E: float | None = None
    loss_A: float | None = None
    loss_alpha: float | None = None

    def compute_optimal(self, flops):
        N = self.N_coef * flops ** self.a
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


def law_from_dict(d: dict[str, Any]) -> Any:
    """An allocation law from a saved fit (``scalinglab fit --save``)."""
    kind = d.get("law")
    try:
        if kind == "chinchilla":
            return ChinchillaLaw(**{k: float(d[k]) for k in ("E", "A", "B", "alpha", "beta")})
        if kind == "kaplan":
            return KaplanLaw(**{k: float(d[k]) for k in ("N_c", "D_c", "alpha_N", "alpha_D")})
        if kind == "frontier":
            a1 = d.get("approach1")
            if not a1:
                raise FitError("this frontier fit has no Approach 1 exponents (the runs lacked N and D), "
                               "so it cannot split compute between N and D")
            return AllocationRule(N_coef=float(a1["N_coef"]), a=float(a1["a"]), loss_E=float(d["E"]),
                                  loss_A=float(d["A"]), loss_alpha=float(d["alpha"]))
        if kind == "isoflop":
            if d.get("a") is None or d.get("N_coef") is None:
                raise FitError("this IsoFLOP fit has no exponents (fewer than 2 usable budgets)")
            return AllocationRule(N_coef=float(d["N_coef"]), a=float(d["a"]))
    except KeyError as exc:
        raise FitError(f"saved {kind} fit lacks {exc.args[0]!r}; re-save it with `scalinglab fit --save`") from None
    if kind == "power":
        raise FitError("a one-variable power law cannot split compute between N and D; "
                       "fit --law chinchilla or kaplan and save that")
    raise FitError(f"unknown law {kind!r} in the saved fit; expected chinchilla, kaplan, frontier or isoflop")


def load_law(spec: str) -> tuple[str, Any]:
    """A published law by name, or a fit saved as JSON; returns (name, law)."""
    if spec in PUBLISHED_LAWS:
        return spec, PUBLISHED_LAWS[spec].law
    path = Path(spec)
    if path.suffix.lower() == ".json" or path.exists():
        if not path.exists():
            raise DataError(f"law file not found: {path}")
        try:
            d = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{path} is not valid JSON ({exc}); save fits with `scalinglab fit --save`") from None
        if not isinstance(d, dict):
            raise DataError(f"{path} does not hold a saved fit (expected a JSON object with a 'law' key)")
        return str(path), law_from_dict(d)
    names = ", ".join(PUBLISHED_LAWS)
    raise FitError(f"unknown law {spec!r}: use one of {names}, or a fit saved with `scalinglab fit --save FILE.json`")


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
