"""Zipf fits: powerlaw vs an independent MLE, known exponents recovered, lognormal data rejected."""

import math

import numpy as np
import pytest
from analysis_synthetic import zipf_text
from scipy import special

from scalinglab.analysis.zipf import (analyse_corpus, analyse_counts, count_words, discrete_ks_distance,
                                      discrete_loglik, discrete_mle_alpha, plot_zipf, sample_discrete_power_law)
from scalinglab.errors import DataError


@pytest.mark.parametrize("alpha, xmin", [(1.8, 1), (2.2, 5), (2.6, 20)])
def test_powerlaw_package_agrees_with_the_hurwitz_zeta_mle(alpha, xmin):
    import powerlaw

    rng = np.random.default_rng(int(alpha * 10) + xmin)
    x = sample_discrete_power_law(4000, alpha, xmin, rng)
    x = np.concatenate([x, rng.integers(1, xmin + 1, size=300)]) if xmin > 1 else x  # a body below x_min
    ours = discrete_mle_alpha(x, xmin)
    fit = powerlaw.Fit(x, discrete=True, xmin=xmin, estimate_discrete=False, verbose=0)
    assert fit.power_law.alpha == pytest.approx(ours, abs=1e-3)
    assert fit.power_law.D == pytest.approx(discrete_ks_distance(x, fit.power_law.alpha, xmin, points="data"),
                                            abs=1e-9)
    assert discrete_ks_distance(x, ours, xmin) >= discrete_ks_distance(x, ours, xmin, points="data")
    assert ours == pytest.approx(alpha, abs=4 * (alpha - 1) / math.sqrt(4000))
    # the MLE is a maximum of the likelihood
    assert discrete_loglik(x[x >= xmin], ours, xmin) >= discrete_loglik(x[x >= xmin], ours + 0.01, xmin)


def test_exact_sampler_has_the_right_probabilities():
    rng = np.random.default_rng(0)
    alpha, xmin = 2.3, 3
    x = sample_discrete_power_law(100_000, alpha, xmin, rng)
    assert x.min() == xmin
    for v in (3, 4, 5, 8, 13):
        p = v ** -alpha / special.zeta(alpha, xmin)
        assert np.mean(x == v) == pytest.approx(p, abs=4 * math.sqrt(p / x.size))


def test_known_exponent_is_recovered_within_its_interval():
    """Counts drawn from P(x) ~ x^-2.2 (numpy's Zipf sampler): alpha = 2.2, s = 1/1.2."""
    rng = np.random.default_rng(7)
    x = rng.zipf(2.2, size=3000)
    res = analyse_counts(x, n_bootstrap=25, n_gof=25, seed=1)
    assert res.alpha_ci[0] <= 2.2 <= res.alpha_ci[1]
    assert res.s_ci[0] <= 1 / 1.2 <= res.s_ci[1]
    assert res.s == pytest.approx(1 / (res.alpha - 1))
    assert res.plausible and res.gof_p >= 0.1
    d = res.to_dict()
    for key in ("exponent", "ci", "xmin", "alpha", "alpha_ci", "power_law_plausible", "lognormal", "gof_p"):
        assert key in d
    assert d["exponent"] == pytest.approx(res.s) and d["xmin"] == res.xmin


def test_lognormal_counts_fail_the_goodness_of_fit_test():
    rng = np.random.default_rng(11)
    x = np.ceil(rng.lognormal(mean=2.0, sigma=1.0, size=20000)).astype(int)
    res = analyse_counts(x, n_bootstrap=0, n_gof=20, seed=2)
    assert not res.plausible and res.gof_p < 0.1
    assert "deviate from a power law" in res.reason()
    assert "neither describes" in res.verdict()


def test_least_squares_recovers_a_noise_free_rank_frequency_law():
    counts = np.round(1e6 * np.arange(1, 5001, dtype=float) ** -1.1).astype(int)
    res = analyse_counts(counts[counts > 0], n_bootstrap=0, n_gof=0)
    assert res.ls.exponent == pytest.approx(1.1, abs=0.02)
    assert res.ls.rank_max / res.ls.rank_min >= 10


def test_corpus_of_zipf_words(tmp_path, cache):
    path = tmp_path / "zipf.txt"
    path.write_text(zipf_text(60_000, 3000, 1.0, seed=4))
    word, sub = analyse_corpus(str(path), vocab_sizes=[600], n_bootstrap=8, n_gof=8)
    assert word.level == "word" and sub.level == "subword" and sub.vocab_size == 600
    assert word.n_tokens == 60_000
    assert 0.75 < word.s < 1.3 and 0.75 < word.ls.exponent < 1.3
    fig = plot_zipf([word, sub])
    assert len(fig.axes) == 2


def test_word_counting_rules():
    text = ["The king's men o'er the hill,\n", "THE 3 kings_and-queens x86\n"]
    c = count_words(text, letters_only=True)
    assert c["the"] == 3 and c["king's"] == 1 and c["o'er"] == 1
    assert c["kings"] == 1 and c["and"] == 1 and c["queens"] == 1 and "3" not in c and c["x"] == 1
    c = count_words(text)  # the default keeps digits in words
    assert c["the"] == 3 and c["3"] == 1 and c["x86"] == 1 and "x" not in c and c["kings"] == 1


def test_words_with_digits_stay_distinct_and_the_rule_is_said(tmp_path, capsys):
    """Before: counting letters only collapsed 2,000 catalogue ids (sku1, sku2, ...) into one word, 'sku'."""
    from analysis_synthetic import zipf_text
    from scalinglab.cli import main

    path = tmp_path / "catalogue.txt"
    ids = zipf_text(20_000, 2000, 1.0, seed=2).split()
    path.write_text(" ".join("sku" + "".join(f"{ord(c) - 96:02d}" for c in w) for w in ids))  # a -> sku01
    (word,) = analyse_corpus(str(path), vocab_sizes=[], n_bootstrap=0, n_gof=0)
    assert word.n_types > 500 and word.word_rule == "letters and digits"
    assert len(count_words([path.read_text()], letters_only=True)) == 1
    assert main(["zipf", str(path), "--vocab-sizes", "none", "--bootstrap", "0", "--gof-samples", "0"]) == 0
    assert "words (letters and digits)" in capsys.readouterr().out
    assert main(["zipf", str(path), "--vocab-sizes", "none", "--letters-only", "--bootstrap", "0",
                 "--gof-samples", "0"]) == 2  # one distinct word is too few to fit


def test_too_little_text_is_a_data_error(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("to be or not to be\n")
    with pytest.raises(DataError, match="distinct words"):
        analyse_corpus(str(short), vocab_sizes=[], n_bootstrap=0, n_gof=0)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DataError, match="no words found .* empty"):
        analyse_corpus(str(empty), vocab_sizes=[])
    with pytest.raises(DataError, match="distinct subwords"):
        analyse_corpus(str(empty), vocab_sizes=[300], words=False, n_bootstrap=0, n_gof=0)
    with pytest.raises(DataError, match="non-negative integers"):
        analyse_counts(np.array([1.5, 2.0] * 100))


def test_shakespeare_words_follow_zipf():
    """Real data, no bootstrap: about 0.9 M words; the tail above x_min has s near 1."""
    from scalinglab.data.text import iter_text

    counts = count_words(iter_text("shakespeare"))
    res = analyse_counts(np.fromiter(counts.values(), dtype=np.int64), n_bootstrap=0, n_gof=0)
    assert 850_000 < res.n_tokens < 1_000_000 and 20_000 < res.n_types < 35_000
    assert 0.9 < res.s < 1.2 and res.xmin >= 10
