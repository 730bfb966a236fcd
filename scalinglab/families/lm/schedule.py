"""Learning-rate schedules of the LM family: per-budget cosine, and warmup-stable-decay (WSD).

Both take the 0-based step whose update the LR is for and reach their floor
exactly at the last step, ``total_steps - 1``.

* **cosine**: linear warmup to the peak, then a half cosine to the floor; every
  token budget gets its own schedule (Hoffmann et al. 2022, Sec. 3.1, App. B).
* **WSD**: linear warmup, a constant peak, and a cooldown over the last
  ``cooldown_steps`` steps. Hägele et al. (2024, "Scaling Laws and
  Compute-Optimal Training Beyond Fixed Training Durations", Sec. 3) find a
  cooldown of ~20% of the steps matches a tuned cosine, and that the
  ``1-sqrt`` shape, lr = floor + (peak - floor)(1 - sqrt(p)) with p the
  cooldown progress in (0, 1], beats ``linear``. Up to the cooldown the LR
  does not depend on the run's length, so one constant-LR trunk with
  cooldowns branched from its checkpoints yields the loss at many budgets.
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "wsd")
COOLDOWN_SHAPES = ("1-sqrt", "linear")


def warmup_steps(total_steps: int, warmup: float) -> int:
    """Steps of linear warmup: at least 1, and at most total_steps - 1 so decay has a step."""
    return min(max(1, round(warmup * total_steps)), max(1, total_steps - 1))


def _check_step(step: int, total_steps: int) -> None:
    if not 0 <= step < total_steps:
        raise ValueError(f"step {step} is outside 0..{total_steps - 1}")


def lr_at(step: int, *, total_steps: int, peak: float, warmup: int, floor: float) -> float:
    """Cosine: steps 0 .. warmup-1 rise linearly to ``peak`` (reached at step warmup-1);
    from there a half cosine falls to ``floor``, reached exactly at the last step."""
    _check_step(step, total_steps)
    if total_steps == 1:
        return floor
    if step < warmup - 1:
        return peak * (step + 1) / warmup
    span = (total_steps - 1) - (warmup - 1)
    progress = (step - (warmup - 1)) / span  # 0 at the peak, exactly 1 at the last step
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def wsd_lr_at(step: int, *, total_steps: int, peak: float, warmup: int, floor: float,
              cooldown_steps: int, shape: str = "1-sqrt") -> float:
    """WSD: warmup as the cosine schedule, the peak until the cooldown, then ``shape`` down to
    ``floor`` over the last ``cooldown_steps`` steps (0: constant to the end)."""
    _check_step(step, total_steps)
    if shape not in COOLDOWN_SHAPES:
        raise ValueError(f"cooldown shape {shape!r} is not one of {', '.join(COOLDOWN_SHAPES)}")
    if step < warmup - 1:
        return peak * (step + 1) / warmup
    start = total_steps - cooldown_steps  # first step of the cooldown
    if cooldown_steps <= 0 or step < start:
        return peak
    progress = (step - start + 1) / cooldown_steps  # 1/cooldown_steps at its first step, exactly 1 at the last
    drop = math.sqrt(progress) if shape == "1-sqrt" else progress
    return floor + (peak - floor) * (1.0 - drop)
