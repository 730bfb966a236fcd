"""Zipf's law in a corpus: word and subword frequencies, fitted two ways.

Zipf (1949) observed that the r-th most frequent word of a text occurs about
``f_r ~ C r^-s`` times with ``s`` near 1. Two exponents describe the same counts
and are easy to mix up, so results always name both:

* ``s``, the **rank-frequency (Zipf) exponent**: ``f_r ~ r^-s``;
* ``alpha``, the **frequency-distribution exponent**: the fraction of word types
  seen exactly ``x`` times is ``P(x) ~ x^-alpha``.

If ``f_r ~ r^-s`` then the number of types with count ``>= x`` is ``r(x) ~ x^-1/s``,
so ``P(x) ~ x^-(1 + 1/s)``: **alpha = 1 + 1/s** and s = 1 / (alpha - 1).

The two fits (:func:`analyse_counts`):

1. **Least squares in log-log space** on the rank-frequency curve, over the rank
   range chosen by the rule of :mod:`scalinglab.analysis.powerlaw_fit`. Simple
   and common, but its residuals are not independent, it has no goodness-of-fit
   test, and it is biased (Clauset, Shalizi & Newman 2009, sec. 3 and App. A).
2. **Discrete power-law maximum likelihood** for ``alpha`` on the counts
   ``x >= x_min``, with ``x_min`` chosen to minimise the Kolmogorov-Smirnov
   distance between the data and the fit (Clauset et al. 2009, sec. 3.3), done
   by the ``powerlaw`` package (Alstott, Bullmore & Plenz 2014). Its
   goodness-of-fit p-value comes from the semi-parametric bootstrap of Clauset et
   al. (sec. 4.1): synthetic data sets (power law above ``x_min``, the empirical
   counts below it) are fitted the same way and ``p`` is the share whose KS
   distance is at least the observed one; ``p >= 0.1`` means the power law is
   plausible. A likelihood-ratio test (Vuong) against a lognormal says whether
   that alternative fits better (R > 0 favours the power law; its p-value says
   whether the sign of R can be trusted).

The MLE is the one to trust: it is consistent, its interval and ``x_min`` come
from the data, and it can *fail* a goodness-of-fit test. Intervals for both fits
come from one nonparametric bootstrap over word types (resample the counts with
replacement and refit everything, ``x_min`` and the LS rank range included;
Clauset et al. 2009, sec. 3.4).

The module also holds a small independent implementation of the discrete
power law for a fixed ``x_min`` (:func:`discrete_mle_alpha`,
:func:`discrete_ks_distance`, :func:`sample_discrete_power_law`, built on the
Hurwitz zeta function), used for the goodness-of-fit simulations and to check
``powerlaw`` in the tests.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from scalinglab.analysis.powerlaw_fit import RankFit, fit_rank_power_law, percentile_interval
from scalinglab.errors import ConfigError, DataError, FitError

GOF_THRESHOLD = 0.1  # Clauset et al. 2009: rule out the power law if p < 0.1
MIN_TAIL = 50  # x_min is searched only where at least this many types lie in the tail
ALPHA_RANGE = (1.0 + 1e-6, 10.0)  # bounds for the exponent of the frequency distribution
# A word: a maximal run of letters and digits (or of letters only), joined by inner apostrophes (o'er, 'tis -> tis)
WORD_PATTERNS = {False: re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*"),
                 True: re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")}
WORD_RULES = {False: "letters and digits", True: "letters only"}


# ---------------------------------------------------------------- counting

def count_words(chunks: Iterable[str], *, letters_only: bool = False) -> Counter:
    """Lower-cased word counts: maximal runs of letters and digits, joined by inner apostrophes (``o'er``).

    Digits belong to words by default, so identifiers, catalogue numbers and
    ids (``sku1009``, ``x86``) stay distinct words; ``letters_only`` makes digits
    separators too (``kings2`` -> ``kings``), as in prose-only counts.
    Underscores and punctuation always separate words. Chunks are counted one
    at a time, so memory grows with the vocabulary, not the corpus.
    """
    pattern = WORD_PATTERNS[bool(letters_only)]
    counts: Counter = Counter()
    for chunk in chunks:
        counts.update(pattern.findall(chunk.lower()))
    return counts


def count_tokens(chunks: Iterable[str], tokenizer) -> np.ndarray:
    """Occurrences of every id of a ``tokenizers.Tokenizer`` in the chunks (index = token id)."""
    counts = np.zeros(tokenizer.get_vocab_size(), dtype=np.int64)
    for chunk in chunks:
        ids = tokenizer.encode(chunk).ids
        counts += np.bincount(np.asarray(ids, dtype=np.int64), minlength=counts.size)[: counts.size]
    return counts


# ---------------------------------------------------------------- discrete power law (independent)

def discrete_loglik(x, alpha: float, xmin: int) -> float:
    """Log-likelihood of ``P(x) = x^-alpha / zeta(alpha, xmin)`` for integers ``x >= xmin``."""
    x = np.asarray(x, dtype=float)
    return float(-alpha * np.log(x).sum() - x.size * math.log(special.zeta(alpha, xmin)))


def discrete_mle_alpha(x, xmin: int) -> float:
    """Maximum-likelihood ``alpha`` of the discrete power law on the values ``x >= xmin`` (Hurwitz zeta)."""
    x = np.asarray(x, dtype=float)
    x = x[x >= xmin]
    if x.size < 2:
        raise FitError(f"fewer than 2 values at or above x_min = {xmin}")
    sum_log = np.log(x).sum()
    nll = lambda a: a * sum_log + x.size * math.log(special.zeta(a, xmin))  # noqa: E731
    res = optimize.minimize_scalar(nll, bounds=ALPHA_RANGE, method="bounded", options={"xatol": 1e-10})
    return float(res.x)


def discrete_ks_distance(x, alpha: float, xmin: int, points: str = "all") -> float:
    """Largest gap between the empirical and fitted CDFs of the values ``x >= xmin``.

    ``points="all"`` takes the supremum over every integer ``>= xmin``
    (Clauset et al. 2009, eq. 3.9); ``points="data"`` compares ``P(X < v)`` at
    the observed values ``v`` only, which is what ``powerlaw`` reports.
    """
    if points not in ("all", "data"):
        raise ConfigError(f"points must be 'all' or 'data', got {points!r}")
    x = np.sort(np.asarray(x, dtype=float))
    x = x[x >= xmin]
    values, counts = np.unique(x, return_counts=True)
    norm = special.zeta(alpha, xmin)
    emp_at = np.cumsum(counts) / x.size  # P(X <= v)
    emp_below = np.concatenate([[0.0], emp_at[:-1]])  # P(X < v)
    fit_below = 1.0 - special.zeta(alpha, values) / norm
    gap = np.abs(emp_below - fit_below).max()
    if points == "all":
        gap = max(gap, np.abs(emp_at - (1.0 - special.zeta(alpha, values + 1) / norm)).max())
    return float(gap)


def sample_discrete_power_law(n: int, alpha: float, xmin: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` exact draws from ``P(x) ~ x^-alpha``, ``x >= xmin``, by inverting the Hurwitz-zeta tail.

    A draw is the largest integer ``x`` with ``P(X >= x) >= u`` for a uniform
    ``u``. The continuous approximation (Clauset et al. 2009, eq. D.6) is right
    for most draws; the others are found by bisection. Draws are capped at 1e15.
    """
    if alpha <= 1:
        raise FitError(f"a discrete power law needs alpha > 1, got {alpha}")
    u = 1.0 - rng.random(n)  # in (0, 1]
    target = u * special.zeta(alpha, xmin)  # want the largest x with zeta(alpha, x) >= target
    x = np.floor((xmin - 0.5) * u ** (-1.0 / (alpha - 1.0)) + 0.5)
    x = np.clip(x, xmin, _MAX_DRAW)
    wrong = ~((special.zeta(alpha, x) >= target) & (special.zeta(alpha, x + 1) < target))
    if wrong.any():
        t, guess = target[wrong], x[wrong]
        lo = np.where(special.zeta(alpha, guess) >= t, guess, float(xmin))  # zeta(lo) >= t always
        hi = np.maximum(lo + 1, 2 * guess)
        while (grow := (special.zeta(alpha, hi) >= t) & (hi < _MAX_DRAW)).any():
            hi = np.where(grow, np.minimum(2 * hi, _MAX_DRAW), hi)
        while (open_ := hi - lo > 1).any():
            mid = np.floor((lo + hi) / 2)
            ok = special.zeta(alpha, mid) >= t
            lo = np.where(open_ & ok, mid, lo)
            hi = np.where(open_ & ~ok, mid, hi)
        x[wrong] = lo
    return x.astype(np.int64)


_MAX_DRAW = 1e15


# ---------------------------------------------------------------- powerlaw package

def _powerlaw_fit(x, xmin=None):
    """``powerlaw.Fit`` on counts: (fit at the chosen x_min, alpha, x_min, KS distance).

    x_min is searched (unless given) over the observed values that leave at
    least ``MIN_TAIL`` types in the tail, with ``powerlaw``'s default estimator
    (exact numerical likelihood for x_min < 10, the accurate closed form of
    Clauset et al. 2009 eq. 3.7 above). ``alpha`` and the KS distance are then
    refitted at that x_min with the exact discrete likelihood.
    """
    import powerlaw

    x = np.asarray(x, dtype=float)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if xmin is None:
            top = np.sort(x)[-MIN_TAIL] if x.size > MIN_TAIL else x.max()
            scan = powerlaw.Fit(x, discrete=True, xmin=(x.min(), top), verbose=0,
                                parameter_ranges={"alpha": list(ALPHA_RANGE)})
            xmin = scan.xmin
            if not np.isfinite(xmin):
                raise FitError("no x_min leaves a usable power-law tail in these counts")
        fit = powerlaw.Fit(x, discrete=True, xmin=float(xmin), estimate_discrete=False, verbose=0,
                           parameter_ranges={"alpha": list(ALPHA_RANGE)})
        pl = fit.power_law
        alpha, d = float(pl.alpha), float(pl.D)
    return fit, alpha, float(xmin), d


def _tail_count(x, xmin) -> int:
    return int(np.count_nonzero(np.asarray(x) >= xmin))


# ---------------------------------------------------------------- analysis

@dataclass
class ZipfResult:
    """Both fits of one set of counts; ``to_dict`` is the CLI's JSON."""

    level: str  # "word" or "subword"
    vocab_size: int | None  # BPE vocabulary (subwords only)
    n_tokens: int
    n_types: int  # types seen at least once
    counts: np.ndarray  # descending
    # least squares on the rank-frequency curve
    ls: RankFit
    ls_ci: tuple[float, float]  # interval on s
    # discrete MLE
    alpha: float
    alpha_ci: tuple[float, float]
    alpha_se: float  # asymptotic standard error (alpha - 1) / sqrt(n_tail)
    xmin: int
    n_tail: int  # types with count >= xmin = the top n_tail ranks
    ks_distance: float
    gof_p: float
    n_gof: int
    lognormal_R: float
    lognormal_p: float
    n_bootstrap: int
    level_ci: float
    bootstrap_xmins: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    source: str = ""
    word_rule: str = ""  # what counted as a word (WORD_RULES); empty for subwords

    @property
    def s(self) -> float:
        """Zipf exponent from the MLE: s = 1 / (alpha - 1)."""
        return 1.0 / (self.alpha - 1.0)

    @property
    def s_ci(self) -> tuple[float, float]:
        lo, hi = self.alpha_ci
        return (1.0 / (hi - 1.0) if hi > 1 else math.inf, 1.0 / (lo - 1.0) if lo > 1 else math.inf)

    @property
    def plausible(self) -> bool:
        return bool(self.gof_p >= GOF_THRESHOLD)

    def reason(self) -> str:
        if self.plausible:
            head = (f"goodness-of-fit p = {self.gof_p:.2f} >= {GOF_THRESHOLD} ({self.n_gof} synthetic sets): "
                    f"a power law above x_min = {self.xmin} is not ruled out")
        else:
            head = (f"goodness-of-fit p = {self.gof_p:.2f} < {GOF_THRESHOLD} ({self.n_gof} synthetic sets): "
                    f"the counts above x_min = {self.xmin} deviate from a power law more than its own "
                    f"samples do (KS distance {self.ks_distance:.3f})")
        favour = "power law" if self.lognormal_R > 0 else "lognormal"
        sure = "significant" if self.lognormal_p < 0.1 else "not significant, so the test cannot tell them apart"
        return (f"{head}; vs lognormal R = {self.lognormal_R:.2f} favours the {favour} "
                f"(p = {self.lognormal_p:.2f}, {sure})")

    def verdict(self) -> str:
        """Which fit to trust, and how far apart they are."""
        overlap = max(self.ls_ci[0], self.s_ci[0]) <= min(self.ls_ci[1], self.s_ci[1])
        gap = "their intervals overlap" if overlap else "their intervals do not overlap"
        return (f"trust the MLE (s = {self.s:.3f}, alpha = {self.alpha:.3f}): it is consistent, picks x_min "
                f"from the data and has a goodness-of-fit test; least squares gives s = {self.ls.exponent:.3f} "
                f"on ranks {self.ls.rank_min}-{self.ls.rank_max}, and {gap}"
                + ("" if self.plausible else "; but neither describes these counts well: the power law fails "
                   "its goodness-of-fit test"))

    def to_dict(self) -> dict:
        from scalinglab.analysis.powerlaw_fit import _json_float

        f = lambda v: _json_float(float(v))  # noqa: E731
        return {
            "level": self.level, "vocab_size": self.vocab_size, "source": self.source,
            **({"word_rule": self.word_rule} if self.word_rule else {}),
            "n_tokens": self.n_tokens, "n_types": self.n_types,
            "exponent": f(self.s), "ci": [f(c) for c in self.s_ci], "ci_level": self.level_ci,
            "exponent_meaning": "Zipf rank-frequency exponent s (f_r ~ r^-s), from the discrete MLE",
            "alpha": f(self.alpha), "alpha_ci": [f(c) for c in self.alpha_ci], "alpha_se": f(self.alpha_se),
            "alpha_meaning": "frequency-distribution exponent (P(count = x) ~ x^-alpha); alpha = 1 + 1/s",
            "xmin": self.xmin, "n_tail": self.n_tail, "rank_max_mle": self.n_tail,
            "ks_distance": f(self.ks_distance),
            "gof_p": f(self.gof_p), "gof_samples": self.n_gof,
            "power_law_plausible": self.plausible, "reason": self.reason(),
            "lognormal": {"R": f(self.lognormal_R), "p": f(self.lognormal_p),
                          "meaning": "log-likelihood ratio power law vs lognormal (R > 0 favours the "
                                     "power law) and the Vuong p-value of its sign"},
            "least_squares": {"exponent": self.ls.exponent, "ci": [f(c) for c in self.ls_ci],
                              "rank_min": self.ls.rank_min, "rank_max": self.ls.rank_max,
                              "fit": self.ls.to_dict()},
            "bootstrap": {"method": "nonparametric, word types resampled with replacement; x_min and the "
                                    "LS rank range re-chosen in each replicate",
                          "replicates": self.n_bootstrap},
            "verdict": self.verdict(),
        }

    def to_frame(self):
        """One row per rank: count, LS line (inside its range), MLE line (top n_tail ranks)."""
        import pandas as pd

        ranks = np.arange(1, self.counts.size + 1)
        ls_inside = (ranks >= self.ls.rank_min) & (ranks <= self.ls.rank_max)
        return pd.DataFrame({
            "rank": ranks, "count": self.counts,
            "least_squares": np.where(ls_inside, self.ls.predict(ranks), np.nan),
            "mle": np.where(ranks <= self.n_tail, self.mle_rank_curve(ranks), np.nan),
        })

    def mle_rank_curve(self, ranks) -> np.ndarray:
        """The MLE power law as a rank-frequency line.

        ``n_tail`` types reach ``x_min``, so ``f_r = x_min (r / n_tail)^-s`` on ranks ``1..n_tail``.
        """
        return self.xmin * (np.asarray(ranks, dtype=float) / self.n_tail) ** (-self.s)


def analyse_counts(counts, *, level: str = "word", vocab_size: int | None = None, n_bootstrap: int = 100,
                   n_gof: int = 100, ci_level: float = 0.95, seed: int = 0, source: str = "") -> ZipfResult:
    """Fit Zipf's law to type counts both ways (see the module docstring); zeros are dropped."""
    if n_bootstrap < 0 or n_gof < 0:
        raise ConfigError(f"n_bootstrap and n_gof must be >= 0, got {n_bootstrap} and {n_gof}")
    x = np.asarray(list(counts.values()) if isinstance(counts, dict) else counts)
    if x.ndim != 1 or (x.size and (not np.issubdtype(x.dtype, np.number) or np.any(x < 0)
                                   or np.any(x != np.round(x)))):
        raise DataError("counts must be a 1-D array of non-negative integers")
    x = np.sort(x[x > 0].astype(np.int64))[::-1]
    if x.size < 2 * MIN_TAIL:
        raise DataError(f"only {x.size} distinct {level}s were counted; a Zipf fit needs at least "
                        f"{2 * MIN_TAIL} (give a longer text)")
    if np.unique(x).size < 3:
        raise DataError(f"the {level} counts take fewer than 3 distinct values; there is no distribution to fit")
    rng = np.random.default_rng(seed)

    ls = fit_rank_power_law(x)
    fit, alpha, xmin, d = _powerlaw_fit(x)
    n_tail = _tail_count(x, xmin)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        R, p_lr = fit.distribution_compare("power_law", "lognormal")

    boot_alpha = np.full(n_bootstrap, np.nan)
    boot_s_ls = np.full(n_bootstrap, np.nan)
    boot_xmin = np.full(n_bootstrap, np.nan)
    for b in range(n_bootstrap):
        resample = np.sort(rng.choice(x, size=x.size, replace=True))[::-1]
        try:
            _, boot_alpha[b], boot_xmin[b], _ = _powerlaw_fit(resample)
            boot_s_ls[b] = fit_rank_power_law(resample).exponent
        except (FitError, ValueError, ZeroDivisionError):
            continue
    gof_p = goodness_of_fit(x, alpha, int(xmin), d, n_gof, rng) if n_gof else math.nan

    return ZipfResult(
        level=level, vocab_size=vocab_size, n_tokens=int(x.sum()), n_types=int(x.size), counts=x,
        ls=ls, ls_ci=percentile_interval(boot_s_ls, ci_level),
        alpha=alpha, alpha_ci=percentile_interval(boot_alpha, ci_level),
        alpha_se=(alpha - 1.0) / math.sqrt(n_tail), xmin=int(xmin), n_tail=n_tail, ks_distance=d,
        gof_p=gof_p, n_gof=n_gof, lognormal_R=float(R), lognormal_p=float(p_lr),
        n_bootstrap=n_bootstrap, level_ci=ci_level, bootstrap_xmins=boot_xmin, source=source)


def goodness_of_fit(x, alpha: float, xmin: int, observed_ks: float, n_sets: int,
                    rng: np.random.Generator) -> float:
    """Clauset et al. (2009, sec. 4.1) p-value: share of synthetic sets fitting worse than the data.

    Each synthetic set has as many values as ``x``: with probability
    ``n_tail / n`` a draw from the fitted power law above ``xmin``, otherwise a
    value drawn from the observed values below ``xmin``. It is refitted exactly
    as the data were (x_min searched again) and its KS distance recorded.
    """
    x = np.asarray(x)
    below = x[x < xmin]
    n_tail = int(np.count_nonzero(x >= xmin))
    worse = 0
    done = 0
    for _ in range(n_sets):
        k = int(rng.binomial(x.size, n_tail / x.size)) if below.size else x.size
        synthetic = np.concatenate([sample_discrete_power_law(k, alpha, xmin, rng),
                                    rng.choice(below, size=x.size - k, replace=True) if below.size else []])
        try:
            _, _, _, d = _powerlaw_fit(synthetic)
        except (FitError, ValueError, ZeroDivisionError):
            continue
        done += 1
        worse += d >= observed_ks
    return worse / done if done else math.nan


def analyse_corpus(source: str, *, vocab_sizes: Iterable[int] = (8000,), words: bool = True,
                   n_bootstrap: int = 100, n_gof: int = 100, seed: int = 0,
                   letters_only: bool = False) -> list[ZipfResult]:
    """Word counts (if ``words``) and BPE subword counts at each vocabulary size, each fitted both ways.

    ``letters_only``: words are runs of letters (digits separate them), not of
    letters and digits; see :func:`count_words`.

    The corpus is streamed (:func:`scalinglab.data.text.iter_text`); each
    tokenizer is trained on the same corpus and cached (:func:`train_bpe`).
    """
    from scalinglab.data.text import iter_text, train_bpe

    vocab_sizes = list(vocab_sizes)
    if not words and not vocab_sizes:
        raise ConfigError("nothing to analyse: ask for words, subwords (a vocabulary size) or both")
    results = []
    if words:
        counts = count_words(iter_text(source), letters_only=letters_only)
        if not counts:
            raise DataError(f"no words found in {source} (is it empty?); give a text with letters in it")
        result = analyse_counts(np.fromiter(counts.values(), dtype=np.int64), level="word",
                                n_bootstrap=n_bootstrap, n_gof=n_gof, seed=seed, source=str(source))
        result.word_rule = WORD_RULES[bool(letters_only)]
        results.append(result)
    for v in vocab_sizes:
        tok = train_bpe(iter_text(source), v)
        ids = count_tokens(iter_text(source), tok)
        results.append(analyse_counts(ids, level="subword", vocab_size=tok.get_vocab_size(),
                                      n_bootstrap=n_bootstrap, n_gof=n_gof, seed=seed, source=str(source)))
    return results


# ---------------------------------------------------------------- reporting

def format_zipf(result: ZipfResult) -> str:
    name = f"BPE subwords (vocabulary {result.vocab_size})"
    if result.level == "word":
        name = f"words ({result.word_rule})" if result.word_rule else "words"
    lo, hi = result.s_ci
    alo, ahi = result.alpha_ci
    ls = result.ls
    return "\n".join([
        f"{name}: {result.n_tokens:,} tokens, {result.n_types:,} distinct types",
        f"  MLE (discrete power law, powerlaw package): alpha = {result.alpha:.3f} "
        f"[{alo:.3f}, {ahi:.3f}]  ->  Zipf s = 1/(alpha-1) = {result.s:.3f} [{lo:.3f}, {hi:.3f}]",
        f"     x_min = {result.xmin} (KS-chosen): the top {result.n_tail:,} types; KS distance "
        f"{result.ks_distance:.4f}; {result.level_ci:.0%} intervals from {result.n_bootstrap} bootstrap "
        f"resamples of the types",
        f"     power law plausible: {'yes' if result.plausible else 'NO'} - {result.reason()}",
        f"  least squares on log f vs log r: s = {ls.exponent:.3f} [{result.ls_ci[0]:.3f}, "
        f"{result.ls_ci[1]:.3f}] on ranks [{ls.rank_min}, {ls.rank_max}] (chosen by the data)",
        f"  verdict: {result.verdict()}",
    ])


def plot_zipf(results: list[ZipfResult], title: str = ""):
    """Rank-frequency curves with both fits (left) and the MLE view: CCDF of counts with the
    power law above x_min and the lognormal (right)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    import powerlaw

    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    colours = ["#1f4e79", "#c0504d", "#4f8a3c", "#8064a2", "#d08c28"]
    for res, c in zip(results, colours):
        name = "words" if res.level == "word" else f"subwords V={res.vocab_size}"
        ranks = np.arange(1, res.counts.size + 1)
        ax.loglog(ranks, res.counts, ".", ms=2, color=c, alpha=0.6, label=f"{name}")
        r_ls = np.geomspace(res.ls.rank_min, res.ls.rank_max, 40)
        ax.loglog(r_ls, res.ls.predict(r_ls), ls=(0, (4, 2)), lw=1.6, color="k", zorder=3,
                  label=f"  LS s = {res.ls.exponent:.2f} (ranks {res.ls.rank_min}-{res.ls.rank_max})")
        r_ml = np.geomspace(1, res.n_tail, 40)
        ax.loglog(r_ml, res.mle_rank_curve(r_ml), lw=2.2, color=c, alpha=0.8, zorder=2,
                  label=f"  MLE s = {res.s:.2f} (alpha = {res.alpha:.2f}, x_min = {res.xmin})")
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            tail = res.counts[res.counts >= res.xmin].astype(float)
            xs, ccdf = powerlaw.ccdf(res.counts.astype(float))
            ax2.loglog(xs, ccdf, ".", ms=2, color=c, alpha=0.6)
            fit = powerlaw.Fit(res.counts.astype(float), discrete=True, xmin=res.xmin, estimate_discrete=False,
                               verbose=0, parameter_ranges={"alpha": list(ALPHA_RANGE)})
            frac = tail.size / res.counts.size
            grid = np.unique(np.geomspace(res.xmin, tail.max(), 60).round())
            ax2.loglog(grid, frac * fit.power_law.ccdf(grid), lw=2.2, color=c, alpha=0.8,
                       label=f"{name}: power law, p = {res.gof_p:.2f}")
            ax2.loglog(grid, frac * fit.lognormal.ccdf(grid), lw=1, ls=":", color=c,
                       label=f"  lognormal (R = {res.lognormal_R:.1f}, p = {res.lognormal_p:.2f})")
    ax.set_xlabel("rank r")
    ax.set_ylabel("count f_r")
    ax.set_title(title or "Rank-frequency (Zipf) plot")
    ax.legend(fontsize=7, frameon=False, loc="lower left")
    ax2.set_xlabel("count x")
    ax2.set_ylabel("P(count >= x)")
    ax2.set_title("CCDF of counts: MLE power law vs lognormal")
    ax2.legend(fontsize=7, frameon=False, loc="lower left")
    for a in (ax, ax2):
        a.grid(True, which="major", alpha=0.25)
        a.spines[["top", "right"]].set_visible(False)
    return fig
