"""Spectra: known exponents recovered, the Gaussian reference rejected, the randomized path, bad input."""

import numpy as np
import pytest
from analysis_synthetic import power_law_samples, prescribed_matrix

from scalinglab.analysis.spectrum import (GaussianSource, analyse_spectrum, compute_spectrum, load_matrix,
                                          marchenko_pastur_edges, marchenko_pastur_singular_values,
                                          parse_bytes, plot_spectrum)
from scalinglab.errors import ConfigError, DataError, FitError


def test_prescribed_singular_values_are_recovered_within_the_interval():
    x = prescribed_matrix(2000, 100, 0.8)
    res = analyse_spectrum(x, n_bootstrap=60, reference=False)
    assert res.spectrum.method == "lapack-svd"
    assert np.allclose(res.spectrum.values, np.arange(1, 101) ** -0.8, rtol=1e-9)
    assert res.exponent == pytest.approx(0.8, abs=1e-9)
    assert res.ci[0] <= 0.8 <= res.ci[1]
    assert (res.fit.rank_min, res.fit.rank_max) == (1, 100)
    assert res.plausible


def test_interval_covers_the_population_exponent_in_most_samples():
    """Rows are Gaussian draws whose population spectrum falls as r^-0.8; the sample spectrum only
    approximately. A 95% interval should cover 0.8 in most of 20 independent data sets."""
    covered = 0
    for seed in range(20):
        res = analyse_spectrum(power_law_samples(3000, 120, 0.8, seed=seed), n_bootstrap=40,
                               reference=False, seed=seed)
        assert res.plausible and abs(res.exponent - 0.8) < 0.03 and res.ci[1] - res.ci[0] < 0.1
        covered += res.ci[0] <= 0.8 <= res.ci[1]
    assert covered >= 16


def test_gaussian_matrix_is_declared_not_a_power_law():
    res = analyse_spectrum("gaussian:600x300", n_bootstrap=0)
    assert not res.plausible
    assert "bends" in res.reason
    d = res.to_dict()
    assert d["power_law_plausible"] is False and "bends" in d["reason"]
    # ... and so is the Gaussian reference drawn beside a real power law
    ref = analyse_spectrum(prescribed_matrix(600, 60, 0.8), n_bootstrap=0).reference
    assert ref is not None and not ref.plausible and ref.reason


def test_marchenko_pastur_matches_a_simulated_gaussian_matrix():
    n, d = 4000, 400
    simulated = compute_spectrum(GaussianSource(n, d, seed=3)).values
    predicted = marchenko_pastur_singular_values(n, d)
    assert predicted.size == d
    mid = slice(d // 10, 9 * d // 10)
    assert np.allclose(simulated[mid], predicted[mid], rtol=0.01)
    lo, hi = marchenko_pastur_edges(n, d)
    assert simulated[0] == pytest.approx(hi, rel=0.02) and simulated[-1] == pytest.approx(lo, rel=0.05)
    # a wide matrix has the spectrum of its transpose
    assert np.array_equal(marchenko_pastur_singular_values(d, n), predicted)


def test_square_marchenko_pastur_reaches_zero():
    values = marchenko_pastur_singular_values(500, 500)
    assert values[0] == pytest.approx(2 * np.sqrt(500), rel=0.01)
    assert values[-1] < 0.05 * values[0] and np.all(np.diff(values) <= 0)


def test_randomized_path_matches_the_exact_spectrum(tmp_path):
    x = prescribed_matrix(1500, 120, 0.8, seed=2) + 0.3  # a mean row, so centring matters
    path = tmp_path / "m.npy"
    np.save(path, x)
    for center in (False, True):
        exact = compute_spectrum(load_matrix(path), center=center)
        fast = compute_spectrum(load_matrix(path), center=center, max_memory=64 * 1024, rank=30)
        assert exact.method == "lapack-svd" and fast.method == "randomized-svd"
        assert "randomized subspace iteration" in fast.detail and "streamed" in fast.detail
        assert np.allclose(fast.values[:30], exact.values[:30], rtol=1e-4)
    centred = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    assert np.allclose(compute_spectrum(load_matrix(path), center=True).values, centred[centred > 1e-12])


def test_forced_randomized_analysis_states_its_method(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, prescribed_matrix(1500, 120, 0.7, seed=4))
    res = analyse_spectrum(str(path), max_memory=200 * 1024, rank=40, n_bootstrap=20)
    d = res.to_dict()
    assert d["method"] == "randomized-svd" and "randomized" in d["method_detail"]
    assert d["exponent"] == pytest.approx(0.7, abs=1e-4)
    assert d["rank_max"] <= 40
    assert d["reference"]["method"].startswith("randomized")


def test_wide_matrix_spectrum_and_centring():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 300)) * np.arange(1, 301) ** -0.5 + 2.0
    for center in (False, True):
        got = compute_spectrum(load_matrix(x), center=center).values
        want = np.linalg.svd(x - x.mean(axis=0) if center else x, compute_uv=False)
        want = want[want > want[0] * 300 * np.finfo(float).eps]
        assert np.allclose(got, want, rtol=1e-8)


def test_csv_with_header_and_frames(tmp_path):
    x = prescribed_matrix(300, 30, 1.0, seed=1)
    path = tmp_path / "m.csv"
    np.savetxt(path, x, delimiter=",", header=",".join(f"c{i}" for i in range(30)), comments="")
    src = load_matrix(path)
    assert (src.n_rows, src.n_cols) == (300, 30) and "with header" in src.description
    res = analyse_spectrum(str(path), n_bootstrap=0)
    assert res.exponent == pytest.approx(1.0, abs=1e-6)
    frame = res.to_frame()
    assert list(frame.columns[:3]) == ["rank", "singular_value", "fitted"] and len(frame) == 30
    fig = plot_spectrum(res)
    assert len(fig.axes) == 2


def test_three_dimensional_arrays_are_flattened_per_row():
    src = load_matrix(np.zeros((5, 4, 3)) + 1)
    assert (src.n_rows, src.n_cols) == (5, 12) and "flattened" in src.description


@pytest.mark.parametrize("make, message", [
    (lambda p: (p / "e.csv").write_text(""), "empty"),
    (lambda p: (p / "e.npy").write_bytes(b""), "empty"),
    (lambda p: (p / "t.csv").write_text("1,2,3\n4,oops,6\n"), r"line 2, column 2 holds 'oops'"),
    (lambda p: (p / "g.csv").write_text("a,b\n1,2\n3,\n"), "line 3, column 2 holds an empty cell"),
    (lambda p: np.save(p / "v.npy", np.arange(10.0)), "1-D array"),
    (lambda p: np.save(p / "n.npy", np.array([[1.0, np.nan], [2.0, 3.0]])), "finite numbers"),
    (lambda p: np.save(p / "s.npy", np.array([["a", "b"], ["c", "d"]])), "not a real number type"),
    (lambda p: np.savez(p / "z.npz", a=np.ones((3, 3)), b=np.ones((3, 3))), "--key"),
    (lambda p: (p / "m.xlsx").write_text("x"), "unknown suffix"),
])
def test_bad_matrix_files_give_data_errors(tmp_path, make, message):
    make(tmp_path)
    (path,) = list(tmp_path.iterdir())
    with pytest.raises(DataError, match=message):
        analyse_spectrum(str(path), n_bootstrap=0, reference=False)


def test_missing_path_and_bad_settings():
    with pytest.raises(DataError, match="no such file"):
        load_matrix("/nonexistent/matrix.npy")
    with pytest.raises(ConfigError, match="gaussian:ROWSxCOLS"):
        load_matrix("gaussian:12")
    with pytest.raises(FitError, match="at least 11"):
        analyse_spectrum(np.eye(8), n_bootstrap=0, reference=False)
    with pytest.raises(ConfigError):
        analyse_spectrum(np.eye(20), n_bootstrap=-1)
    assert parse_bytes("1.5G") == 3 << 29 and parse_bytes("512k") == 512 * 1024 and parse_bytes("77") == 77
    with pytest.raises(ConfigError, match="memory size"):
        parse_bytes("lots")
