"""precision "auto": bf16 only where the CPU computes it natively, the same rule for every family."""

import pytest

import scalinglab.provenance as provenance
from scalinglab.families.lm.study import get_preset
from scalinglab.families.mnist.grid import PRESETS, MnistGrid


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_follows_the_cpu_in_every_family(monkeypatch, native, expected):
    monkeypatch.setattr(provenance, "native_bf16", lambda: native)
    grid = MnistGrid(widths=[4], fractions=[1.0])
    assert grid.precision == "auto"
    assert {c["precision"] for c in grid.configs()} == {expected}
    assert {c["precision"] for c in PRESETS["quick"].configs()} == {expected}  # presets resolve when expanded
    assert get_preset("smoke").run["precision"] == expected


def test_an_explicit_precision_is_kept(monkeypatch):
    monkeypatch.setattr(provenance, "native_bf16", lambda: False)
    assert MnistGrid(widths=[4], fractions=[1.0], precision="bf16").configs()[0]["precision"] == "bf16"
    assert get_preset("smoke", {"precision": "bf16"}).run["precision"] == "bf16"
    monkeypatch.setattr(provenance, "native_bf16", lambda: True)
    assert MnistGrid(widths=[4], fractions=[1.0], precision="fp32").configs()[0]["precision"] == "fp32"


def test_native_bf16_reads_the_cpu_flags(monkeypatch):
    for flags, native in [({"avx2", "fma"}, False), ({"avx512f", "avx512_bf16"}, True), ({"amx_bf16"}, True),
                          (set(), False)]:
        monkeypatch.setattr(provenance, "cpu_flags", lambda flags=flags: flags)
        provenance.native_bf16.cache_clear()
        assert provenance.native_bf16() is native
    provenance.native_bf16.cache_clear()


def test_this_machine_s_flags_are_read():
    """Where /proc/cpuinfo exists, its flags line is found (an empty set would always mean fp32)."""
    from pathlib import Path

    if not Path("/proc/cpuinfo").exists():
        pytest.skip("no /proc/cpuinfo")
    flags = provenance.cpu_flags()
    assert flags and provenance.native_bf16() == bool(flags & set(provenance.NATIVE_BF16_FLAGS))
