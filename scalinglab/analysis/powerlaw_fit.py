"""Straight lines in log-log space over a rank range chosen by the data.

Both the singular-value spectra (:mod:`scalinglab.analysis.spectrum`) and the
least-squares Zipf fit (:mod:`scalinglab.analysis.zipf`) describe a decreasing
sequence ``y_1 >= y_2 >= ...`` indexed by rank ``r`` with a power law
``y_r ~ A r^-beta`` over some range of ranks. This module chooses that range.

The rule (:func:`fit_rank_power_law`):

1. Look at the sequence on a log-spaced grid of ranks, ``PER_DECADE`` points per
   decade (rounded to integers, duplicates dropped). Every decade then weighs the
   same in a fit; on the raw ranks the last decade would hold 90% of the points.
2. Every pair of grid ranks ``r_min < r_max`` with ``r_max / r_min >= 10``
   (at least ``MIN_DECADES``) is a candidate range. On each, fit the line
   ``log10 y = log10 A - beta log10 r`` by least squares.
3. Score a candidate by its *relative deviation*
   ``D = (max |log10 y - line| + RESOLUTION_DEX) / (beta * log10(r_max / r_min))``:
   the worst miss of the line, as a fraction of the fall the line itself
   describes over the range. Like the Kolmogorov-Smirnov distance it is a
   worst-case miss on a normalised scale; unlike the plain residual it does not
   reward short or flat stretches: on a true power law with a fixed noise level
   the miss stays put while the fall grows with the span, so wider ranges win,
   and on a curved sequence the miss grows faster than the span, so the range
   stops where the bending starts. A range where the line does not fall
   (``beta <= 0``) scores infinity. ``RESOLUTION_DEX`` (0.5%) is the
   resolution we ask of a spectrum; it makes an exactly straight sequence pick
   its widest range instead of an arbitrary one.
4. The range with the smallest ``D`` wins (ties: the wider one).

Plausibility (:meth:`RankFit.verdict`): a power law is plausible on the chosen
range when ``D <= MAX_DEVIATION`` *and* the local exponent, read off a quadratic
fit in log-log space at the two ends of the range, changes by less than a
factor ``MAX_DRIFT``. The second test is what rejects bent curves such as the
Marchenko-Pastur spectrum of a Gaussian matrix, whose log-log slope steepens
several-fold within any decade.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from scalinglab.errors import FitError

PER_DECADE = 10  # grid points per decade of rank
MIN_DECADES = 1.0  # shortest fitted range: r_max / r_min >= 10
RESOLUTION_DEX = 0.002  # 0.002 dex = 0.5%: the scale below which a spectrum is "straight"
MAX_DEVIATION = 0.05  # plausible only if the worst miss is <= 5% of the fitted fall
MAX_DRIFT = 1.5  # ... and the local exponent changes by less than this factor across the range


@dataclass(frozen=True)
class RankFit:
    """``y_r ~ prefactor * r^-exponent`` on ranks ``rank_min..rank_max`` (inclusive)."""

    exponent: float  # beta: the log-log slope, sign flipped
    prefactor: float  # A, in the units of y
    rank_min: int
    rank_max: int
    deviation: float  # D: worst miss / fitted fall (the selection score; inf if no fall)
    max_residual_dex: float  # worst miss of the line, in log10 units
    local_exponent_min: float  # local exponent at rank_min (quadratic fit in log-log space)
    local_exponent_max: float  # local exponent at rank_max
    n_points: int  # grid points inside the range (the points the line was fitted to)
    n_candidates: int  # candidate ranges scanned

    @property
    def decades(self) -> float:
        return math.log10(self.rank_max / self.rank_min)

    @property
    def drift(self) -> float:
        """Ratio of the larger to the smaller local exponent at the ends (1 for a straight line)."""
        lo, hi = sorted((self.local_exponent_min, self.local_exponent_max))
        return hi / lo if lo > 0 else math.inf

    def predict(self, ranks) -> np.ndarray:
        return self.prefactor * np.asarray(ranks, dtype=float) ** -self.exponent

    def verdict(self) -> tuple[bool, str]:
        """(plausible, reason): the thresholds of the module docstring, explained in words."""
        span = f"ranks {self.rank_min}-{self.rank_max} ({self.decades:.1f} decades)"
        if not math.isfinite(self.deviation):
            return False, f"the sequence does not fall over any range of at least {MIN_DECADES:g} decade"
        problems = []
        if self.deviation > MAX_DEVIATION:
            problems.append(f"even the best range, {span}, misses its line by {self.deviation:.0%} of the "
                            f"line's own fall (a power law needs <= {MAX_DEVIATION:.0%})")
        if not self.drift < MAX_DRIFT:
            problems.append(f"the local exponent goes from {self.local_exponent_min:.3g} to "
                            f"{self.local_exponent_max:.3g} across {span}, a factor "
                            f"{self.drift:.2g} (a power law keeps it within {MAX_DRIFT:g}x): "
                            "the log-log curve bends")
        if problems:
            return False, "; ".join(problems)
        return True, (f"over {span} the line misses by at most {self.deviation:.1%} of its fall "
                      f"(limit {MAX_DEVIATION:.0%}) and the local exponent stays between "
                      f"{min(self.local_exponent_min, self.local_exponent_max):.3g} and "
                      f"{max(self.local_exponent_min, self.local_exponent_max):.3g} "
                      f"(limit a factor {MAX_DRIFT:g})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decades"] = self.decades
        return {k: _json_float(v) for k, v in d.items()}


def log_grid(n: int, per_decade: int = PER_DECADE) -> np.ndarray:
    """Ranks 1..n sampled ``per_decade`` times per decade (integers, unique, always ending at n)."""
    if n < 1:
        raise FitError("a rank grid needs at least one rank")
    points = int(math.ceil(per_decade * math.log10(n))) + 1 if n > 1 else 1
    grid = np.unique(np.round(np.logspace(0.0, math.log10(n), points)).astype(np.int64))
    return grid


def fit_rank_power_law(values, *, per_decade: int = PER_DECADE, min_decades: float = MIN_DECADES) -> RankFit:
    """Fit ``values[r-1] ~ A r^-beta`` over the rank range chosen by the rule of the module docstring.

    ``values`` must be positive and is read in the order given (rank 1 first);
    drop zeros (numerically null singular values, unseen types) beforehand.
    """
    y = np.asarray(values, dtype=float)
    if y.ndim != 1:
        raise FitError(f"rank-ordered values must be 1-D, got shape {y.shape}")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise FitError("rank-ordered values must be finite and positive; drop zeros before fitting")
    needed = int(math.ceil(10 ** min_decades))
    if y.size < needed:
        raise FitError(f"a power law over at least {min_decades:g} decade of ranks needs at least "
                       f"{needed} values, got {y.size}")
    ranks = log_grid(y.size, per_decade)
    u = np.log10(ranks)
    v = np.log10(y[ranks - 1])
    i, j = np.triu_indices(u.size, k=1)
    keep = u[j] - u[i] >= min_decades - 1e-12
    i, j = i[keep], j[keep]

    # Least-squares line on every candidate range at once, from prefix sums.
    def seg(a):
        c = np.concatenate([[0.0], np.cumsum(a)])
        return c[j + 1] - c[i]

    m, su, sv, suu, suv = seg(np.ones_like(u)), seg(u), seg(v), seg(u * u), seg(u * v)
    slope = (m * suv - su * sv) / (m * suu - su * su)
    intercept = (sv - slope * su) / m
    inside = (np.arange(u.size)[None, :] >= i[:, None]) & (np.arange(u.size)[None, :] <= j[:, None])
    resid = np.abs(v[None, :] - intercept[:, None] - slope[:, None] * u[None, :])
    max_resid = np.where(inside, resid, 0.0).max(axis=1)
    fall = -slope * (u[j] - u[i])
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(fall > 0, (max_resid + RESOLUTION_DEX) / fall, np.inf)
    best = np.lexsort((-(u[j] - u[i]), score))[0]  # smallest score, then widest

    lo, hi = i[best], j[best]
    uu, vv = u[lo:hi + 1], v[lo:hi + 1]
    centre = uu.mean()
    c2, c1, _ = np.polyfit(uu - centre, vv, 2)  # local slope at u: c1 + 2 c2 (u - centre)
    return RankFit(
        exponent=float(-slope[best]),
        prefactor=float(10 ** intercept[best]),
        rank_min=int(ranks[lo]),
        rank_max=int(ranks[hi]),
        deviation=float(score[best]),
        max_residual_dex=float(max_resid[best]),
        local_exponent_min=float(-(c1 + 2 * c2 * (uu[0] - centre))),
        local_exponent_max=float(-(c1 + 2 * c2 * (uu[-1] - centre))),
        n_points=int(hi - lo + 1),
        n_candidates=int(i.size),
    )


def local_exponents(values, per_decade: int = PER_DECADE) -> tuple[np.ndarray, np.ndarray]:
    """(ranks, -dlog y / dlog r) from differences between neighbouring points of the log grid.

    The rank of each slope is the geometric mean of its two grid ranks. For plots:
    a power law shows as a flat stretch.
    """
    y = np.asarray(values, dtype=float)
    ranks = log_grid(y.size, per_decade)
    u, v = np.log10(ranks), np.log10(y[ranks - 1])
    return 10 ** ((u[1:] + u[:-1]) / 2), -np.diff(v) / np.diff(u)


def percentile_interval(samples, level: float = 0.95) -> tuple[float, float]:
    """Equal-tailed percentile interval of the finite samples; (nan, nan) if fewer than 2."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size < 2:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(s, [tail, 100.0 - tail])
    return float(lo), float(hi)


def _json_float(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
