"""LM training: the schedule ends at its floor exactly at the budget; a tiny run trains."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalinglab.errors import ConfigError
from scalinglab.families.lm.model import flops_per_token, param_counts, size_config
from scalinglab.families.lm.train import FAMILY, LR_TIMES_WIDTH, LMRunConfig, lr_at, warmup_steps


@settings(max_examples=200, deadline=None)
@given(total=st.integers(1, 100_000), frac=st.floats(0, 0.99), peak=st.floats(1e-5, 1.0),
       ratio=st.floats(0, 1))
def test_schedule_reaches_its_floor_exactly_at_the_last_step(total, frac, peak, ratio):
    warm = warmup_steps(total, frac)
    floor = ratio * peak
    lr = lambda s: lr_at(s, total_steps=total, peak=peak, warmup=warm, floor=floor)  # noqa: E731
    assert lr(total - 1) == floor
    if total >= 2:
        assert 1 <= warm <= total - 1
        assert lr(warm - 1) == pytest.approx(peak)  # the peak, at the end of warmup
        assert all(0 < lr(s) <= peak * (1 + 1e-12) for s in {0, warm // 2})
        assert all(floor * (1 - 1e-12) <= lr(s) <= peak * (1 + 1e-12) for s in {warm, total // 2, total - 2}
                   if s >= warm - 1)


def test_schedule_shape():
    total, warm, peak, floor = 1000, 50, 1e-3, 1e-4
    lrs = np.array([lr_at(s, total_steps=total, peak=peak, warmup=warm, floor=floor) for s in range(total)])
    assert np.all(np.diff(lrs[:warm]) > 0) and np.all(np.diff(lrs[warm - 1:]) <= 0)
    assert lrs[0] == pytest.approx(peak / warm)
    mid = warm - 1 + (total - warm) // 2  # halfway through the decay: halfway between peak and floor
    assert lrs[mid] == pytest.approx((peak + floor) / 2, rel=1e-2)
    with pytest.raises(ValueError):
        lr_at(total, total_steps=total, peak=peak, warmup=warm, floor=floor)


def test_each_budget_gets_its_own_schedule():
    """A shorter budget is not a truncation of a longer run: both end at the floor."""
    short = LMRunConfig(size="d32-l1", tokens=2048 * 100)
    long = LMRunConfig(size="d32-l1", tokens=2048 * 400)
    for cfg in (short, long):
        floor = cfg.min_lr_ratio * cfg.peak_lr
        w = warmup_steps(cfg.steps, cfg.warmup)
        assert lr_at(cfg.steps - 1, total_steps=cfg.steps, peak=cfg.peak_lr, warmup=w, floor=floor) == floor
    w = warmup_steps(long.steps, long.warmup)
    assert lr_at(short.steps - 1, total_steps=long.steps, peak=long.peak_lr, warmup=w, floor=0.1 * long.peak_lr) \
        > 5 * short.min_lr_ratio * short.peak_lr


def test_default_lr_scales_as_one_over_width():
    a = LMRunConfig(size="d32-l1", tokens=1e5)
    b = LMRunConfig(size="d128-l4", tokens=1e5)
    assert a.peak_lr == LR_TIMES_WIDTH / 32 and b.peak_lr * 128 == pytest.approx(a.peak_lr * 32)
    assert LMRunConfig(size="d32-l1", tokens=1e5, lr=0.01).peak_lr == 0.01


def test_config_errors_name_the_setting():
    with pytest.raises(ConfigError, match="size"):
        FAMILY.config({"size": "huge", "tokens": 1e5})
    with pytest.raises(ConfigError, match="unknown LM run setting 'tokenz'"):
        FAMILY.config({"size": "d32-l1", "tokenz": 1e5})
    with pytest.raises(ConfigError, match="noise_splits"):
        FAMILY.config({"size": "d32-l1", "tokens": 1e5, "batch_size": 6, "noise_splits": 4})


def test_tiny_run_learns_and_reports_exact_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
    (tmp_path / "corpus.txt").write_text(
        "\n".join(" ".join(rng.choice(words, 8)) + "." for _ in range(4000)))
    config = {"size": "d32-l1", "tokens": 120 * 8 * 32, "context": 32, "batch_size": 8,
              "tokenizer": "bytes", "corpus": str(tmp_path / "corpus.txt"), "eval_tokens": 2048}
    data = FAMILY.load_data(config)
    result = FAMILY.train(config, data)
    mcfg = size_config("d32-l1", vocab_size=256, context=32)
    m = result.metrics
    assert result.examples == 120 * 8 * 32 and m["steps"] == 120
    assert result.flops == flops_per_token(mcfg)["train"] * result.examples
    assert FAMILY.cost(config) >= result.flops
    assert result.params == param_counts(mcfg)["total"] == m["params_total"]
    assert m["params_non_embedding"] == param_counts(mcfg)["non_embedding"]
    assert m["flops_6nd"] == 6 * result.params * result.examples
    assert m["lr_curve"][-1][1] == m["lr_floor"] == pytest.approx(0.1 * LR_TIMES_WIDTH / 32)
    assert len(result.curve) == 40 and result.curve[-1][0] == result.examples
    assert result.curve[-1][1] < result.curve[0][1] - 1.0  # it learns the word list
    assert result.val_loss < math.log(256) - 2.0 and 0 < result.val_acc < 1
    assert m["eval_tokens"] == 2048
    assert math.isfinite(m["noise_scale"]) and m["noise_scale"] > 0
    assert m["noise_scale"] == pytest.approx(32 * m["noise_scale_sequences"])
    assert len(m["noise_curve"]) == 40
