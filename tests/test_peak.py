"""The machine peak behind "% of peak" is not fooled by a busy moment (issue 16, case 9)."""

import json

import pytest

from scalinglab.sweep import peak as peak_module
from scalinglab.sweep.peak import Peak, machine_key, machine_peak, measure_peak


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path))
    return tmp_path / "peak.json"


def test_the_peak_is_the_best_burst_not_the_last(monkeypatch):
    """A burst slowed by other work (here the 2nd and 4th) must not lower the figure."""
    rates = iter([40.0, 80.0, 15.0, 30.0, 90.0, 160.0, 20.0, 25.0, 85.0, 150.0])  # fp32, bf16 per burst
    monkeypatch.setattr(peak_module, "_burst_gflops", lambda *a: next(rates))
    monkeypatch.setattr(peak_module.time, "sleep", lambda s: None)
    peak = measure_peak(threads=1, bursts=5)
    assert (peak.fp32_gflops, peak.bf16_gflops) == (90.0, 160.0)


def test_the_cache_key_names_the_host_and_the_cpu(monkeypatch, cache):
    monkeypatch.setattr(peak_module.socket, "gethostname", lambda: "laptop")
    monkeypatch.setattr(peak_module, "measure_peak", lambda: Peak(100.0, 200.0, 2))
    first = machine_key()
    assert first.startswith("laptop|") and peak_module.library_versions()["processor"] in first
    machine_peak()
    monkeypatch.setattr(peak_module.socket, "gethostname", lambda: "desktop")  # same cache folder, other host
    monkeypatch.setattr(peak_module, "measure_peak", lambda: Peak(50.0, 60.0, 2))
    assert machine_peak().fp32_gflops == 50.0  # measured for itself, not the laptop's figure
    assert set(json.loads(cache.read_text())) == {first, machine_key()}


def test_a_lower_figure_never_replaces_a_stored_one_unless_refreshed(monkeypatch, cache):
    key = machine_key()

    def measure_while_a_rival_stores_a_higher_figure():
        cache.write_text(json.dumps({key: {"fp32_gflops": 300.0, "bf16_gflops": 500.0, "threads": 2}}))
        return Peak(120.0, 700.0, 2, 5.5)  # measured on a busy machine, but bf16 happened to do better

    monkeypatch.setattr(peak_module, "measure_peak", measure_while_a_rival_stores_a_higher_figure)
    peak = machine_peak()
    assert (peak.fp32_gflops, peak.bf16_gflops) == (300.0, 700.0)
    assert json.loads(cache.read_text())[key]["fp32_gflops"] == 300.0

    monkeypatch.setattr(peak_module, "measure_peak", lambda: pytest.fail("a cached peak is not measured again"))
    assert machine_peak().fp32_gflops == 300.0

    monkeypatch.setattr(peak_module, "measure_peak", lambda: Peak(110.0, 210.0, 2, 0.1))
    assert machine_peak(refresh=True).fp32_gflops == 110.0  # asked for: the new figure replaces it
    assert json.loads(cache.read_text())[key]["fp32_gflops"] == 110.0


def test_a_damaged_cache_file_is_measured_again(monkeypatch, cache):
    cache.write_text('{"x": {"fp32": 1}} trailing')
    monkeypatch.setattr(peak_module, "measure_peak", lambda: Peak(100.0, 200.0, 2))
    assert machine_peak().fp32_gflops == 100.0
