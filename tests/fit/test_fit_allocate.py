"""Published laws, compute-optimal allocation and the inference-aware optimum of Sardana et al. 2023."""

import json
import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from scalinglab.errors import DataError, FitError
from scalinglab.fit import PUBLISHED_LAWS, ChinchillaLaw, KaplanLaw, compute_optimal, inference_optimal, load_law

GOPHER_FLOPS = 5.76e23


def test_unrounded_hoffmann_law_gives_the_papers_projections():
    """Hoffmann et al. 2022 (Fig. 4 / Table A3): Approach 3 puts ~40B params at Gopher's budget, ~67B at 1.71e24."""
    law = PUBLISHED_LAWS["hoffmann2022-unrounded"].law
    assert compute_optimal(law, GOPHER_FLOPS).N_opt == pytest.approx(40e9, rel=0.02)
    assert compute_optimal(law, 1.71e24).N_opt == pytest.approx(67e9, rel=0.02)
    assert law.A == pytest.approx(406.4, abs=0.01) and law.B == pytest.approx(410.7, abs=0.03)
    assert law.E == pytest.approx(1.6934, abs=1e-4)


def test_published_registry_values():
    h = PUBLISHED_LAWS["hoffmann2022"].law
    assert (h.E, h.A, h.B, h.alpha, h.beta) == (1.69, 406.4, 410.7, 0.34, 0.28)
    e = PUBLISHED_LAWS["epoch2024"].law
    assert (e.E, e.A, e.B, e.alpha, e.beta) == (1.8172, 482.01, 2085.43, 0.3478, 0.3658)
    k = PUBLISHED_LAWS["kaplan2020"].law
    assert (k.N_c, k.D_c, k.alpha_N, k.alpha_D) == (8.8e13, 5.4e13, 0.076, 0.095)
    # Kaplan's empirical rule N_opt ∝ C^0.73 (eq. 6.1): 10x compute -> 10^0.73 x params
    r = compute_optimal(k, 1e24).N_opt / compute_optimal(k, 1e23).N_opt
    assert r == pytest.approx(10 ** 0.73)


@pytest.mark.parametrize("name", list(PUBLISHED_LAWS))
@pytest.mark.parametrize("flops", [1e20, 1e24])
def test_allocation_spends_the_budget(name, flops):
    a = compute_optimal(PUBLISHED_LAWS[name].law, flops, name=name)
    assert 6 * a.N_opt * a.D_opt == pytest.approx(flops, rel=1e-12)
    assert a.tokens_per_param == pytest.approx(a.D_opt / a.N_opt)
    assert a.loss is not None and a.loss > 1


@pytest.mark.parametrize("law", [PUBLISHED_LAWS["epoch2024"].law, KaplanLaw(8.8e13, 5.4e13, 0.076, 0.095)])
def test_closed_form_optimum_minimises_loss_on_the_budget(law):
    C = 1e23
    N, _ = law.compute_optimal(C)
    res = minimize_scalar(lambda v: float(law.loss(np.exp(v), C / (6 * np.exp(v)))),
                          bounds=(np.log(N) - 5, np.log(N) + 5), method="bounded", options={"xatol": 1e-10})
    assert np.exp(res.x) == pytest.approx(N, rel=1e-3)


def test_inference_aware_optimum():
    law = PUBLISHED_LAWS["epoch2024"].law
    base = compute_optimal(law, 1e24)
    zero = inference_optimal(law, 1e24, 0.0)
    assert zero.N == pytest.approx(base.N_opt, rel=1e-4) and abs(zero.flops_saved_fraction) < 1e-8
    res = inference_optimal(law, 1e24, 1e13)
    assert res.N < base.N_opt and res.D > base.D_opt                  # smaller model, trained longer
    assert float(law.loss(res.N, res.D)) == pytest.approx(base.loss, rel=1e-10)   # same quality
    assert res.total_flops == pytest.approx(6 * res.N * res.D + 2 * res.N * 1e13)
    assert 0 < res.flops_saved_fraction < 1
    # it is the minimum: nudging N either way (at the same loss) costs more
    for f in (0.97, 1.03):
        N = res.N * f
        D = float(law.tokens_for_loss(N, base.loss))
        assert 6 * N * D + 2 * N * 1e13 > res.total_flops
    more = inference_optimal(law, 1e24, 1e14)
    assert more.N < res.N                                              # more inference, smaller model


def test_load_law_from_saved_fit(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({"law": "chinchilla", "E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35,
                                "beta": 0.37, "ci": {}}))
    name, law = load_law(str(path))
    assert isinstance(law, ChinchillaLaw) and law.A == 480.0
    path.write_text(json.dumps({"law": "power", "E": 1.0, "A": 2.0, "alpha": 0.1}))
    with pytest.raises(FitError, match="cannot split compute"):
        load_law(str(path))
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_law(str(path))
    with pytest.raises(FitError, match="unknown law 'chinchila'"):
        load_law("chinchila")
    with pytest.raises(DataError, match="not found"):
        load_law(str(tmp_path / "missing.json"))


def test_bad_budget():
    with pytest.raises(FitError, match="positive"):
        compute_optimal(PUBLISHED_LAWS["hoffmann2022"].law, -1.0)
    with pytest.raises(FitError, match="positive"):
        compute_optimal(PUBLISHED_LAWS["hoffmann2022"].law, math.nan)


@pytest.mark.parametrize("text, match", [
    ('{"schema_version": 1, "law": "chinchilla", "params": {"E": 1.8, "A": 480, "B": 2100, "alpha": "0.35", '
     '"beta": 0.37}, "derived": {}}', "'alpha' must be a number"),
    ('{"schema_version": 1, "law": "chinchilla", "params": {"E": 1.8, "A": 480, "B": 2100, "alpha": null, '
     '"beta": 0.37}, "derived": {}}', "must be a number, got null"),
    ('{"schema_version": 1, "law": "chinchilla", "params": {"E": 1.8, "A": 480, "B": 2100, "alpha": 0, '
     '"beta": 0.37}, "derived": {}}', "not a positive number"),
    ('{"schema_version": 1, "law": "kaplan", "params": {"N_c": 1e13, "D_c": 1e13, "alpha_N": -0.07, '
     '"alpha_D": 0.1}, "derived": {}}', "'alpha_N' = -0.07 is not a positive"),
    ('{"schema_version": 1, "law": "chinchilla", "params": {"E": NaN, "A": 480, "B": 2100, "alpha": 0.3, '
     '"beta": 0.37}, "derived": {}}', "holds NaN is not a number"),
    ('{"law": "chinchilla", "E": Infinity, "A": 480, "B": 2100, "alpha": 0.3, "beta": 0.37}',
     "holds Infinity"),
    ('{"schema_version": 1, "law": "isoflop", "params": {"N_coef": 0.1}, "derived": {"a": true}}',
     "'a' must be a number"),
    ('{"schema_version": 1, "law": "chinchilla", "params": [1, 2], "derived": {}}', "must be JSON objects"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ('{"schema_version": 1, "law": {"deep": [[[]]]}, "params": {}, "derived": {}}', "unknown law"),
])
def test_every_saved_fit_field_is_validated(tmp_path, capsys, text, match):
    """Issue 16 case 7: these gave tracebacks, or 'N_opt = inf, D_opt = 0, loss nan' with exit 0."""
    from scalinglab.cli import main

    path = tmp_path / "fit.json"
    path.write_text(text)
    code = main(["allocate", "--flops", "1e22", "--law", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and match in err and err.count("\n") == 1, err


def test_a_directory_is_not_a_saved_fit(tmp_path):
    d = tmp_path / "fit.json"
    d.mkdir()
    with pytest.raises(DataError, match="is a directory"):
        load_law(str(d))


def test_isoflop_fit_allocates_with_its_measured_tokens(tmp_path):
    from fit_synthetic import isoflop_runs
    from scalinglab.fit import fit_law
    from scalinglab.fit.allocate import allocate_with_intervals, law_from_dict

    runs = isoflop_runs(seed=3)
    runs["D"] *= 2.0                     # the runs trained twice the tokens 6ND would say
    d = fit_law(runs, "isoflop", n_resamples=20, at_flops=[1e21], check_mixed=False).to_dict(samples=True)
    alloc, iv = allocate_with_intervals(law_from_dict(d), 1e21, d)
    assert alloc.D_opt == pytest.approx(d["derived"]["D_opt@1e+21"]) and alloc.N_opt == pytest.approx(
        d["derived"]["N_opt@1e+21"])
    assert iv["D_opt"]["lo"] == pytest.approx(d["intervals"]["D_opt@1e+21"]["lo"])
