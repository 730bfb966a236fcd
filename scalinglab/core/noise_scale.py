"""The gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018).

G is the true gradient of the loss and Sigma the per-example covariance of
gradients. A minibatch gradient G_B of B examples has E|G_B|^2 = |G|^2 +
tr(Sigma)/B, so squared norms at two batch sizes give unbiased estimates of
both terms (McCandlish et al. 2018, Appendix A, eqs. A.2-A.3):

    |G|^2    ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)

Each single-step estimate is very noisy (|G|^2 is a small difference of two
large numbers), so the two estimates are averaged over many steps *before*
taking their ratio; the ratio of averages is consistent, the average of
ratios is not. McCandlish et al. relate B_simple to the critical batch size
B_crit: batches much smaller than it are data-efficient, batches much larger
waste examples; Kaplan et al. (2020, Sec. 5.1) find B_crit grows as the
loss falls.

The estimator is generic: it needs a model, a loss function ``loss_fn(model,
batch) -> scalar mean loss`` and equally sized small batches. The big batch
is their union: its gradient is the mean of the small-batch gradients, so
one pass of backward over k small batches yields k values of |G_small|^2 and
one of |G_big|^2, at no extra model compute. Training loops use
:func:`accumulate_gradients`, which leaves the big-batch gradient in
``.grad`` for the optimizer step; :func:`estimate_noise_scale` measures a
fixed model without training it.

Units: B_simple is in the loss function's examples (images for MNIST,
sequences for a language model; multiply by the context for tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch

LossFn = Callable[[torch.nn.Module, Any], torch.Tensor]


@dataclass(frozen=True, slots=True)
class NormSample:
    """Squared gradient norms from one big batch split into small ones."""

    b_small: int  # examples per small batch
    b_big: int  # examples in the big batch (all small batches together)
    g_small_sq: float  # mean over the small batches of |G_small|^2
    g_big_sq: float  # |G_big|^2

    def estimates(self) -> tuple[float, float]:
        """Unbiased single-sample estimates (|G|^2, tr(Sigma))."""
        bs, bb = self.b_small, self.b_big
        g2 = (bb * self.g_big_sq - bs * self.g_small_sq) / (bb - bs)
        trace = (self.g_small_sq - self.g_big_sq) / (1.0 / bs - 1.0 / bb)
        return g2, trace


def _flat_grad(params: list[torch.nn.Parameter]) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float()
                      for p in params])


def accumulate_gradients(model: torch.nn.Module, loss_fn: LossFn, batches: Sequence[Any],
                         batch_sizes: Sequence[int] | None = None) -> tuple[float, NormSample | None]:
    """Backward over ``batches`` so that ``.grad`` holds the big-batch mean gradient.

    Returns the mean loss and a :class:`NormSample` (None when fewer than two
    small batches or unequal sizes, where the estimator is undefined). Any
    gradient already in ``.grad`` is discarded.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    k = len(batches)
    sizes = list(batch_sizes) if batch_sizes is not None else [_batch_len(b) for b in batches]
    measure = k >= 2 and len(set(sizes)) == 1
    prev = torch.zeros(sum(p.numel() for p in params)) if measure else None
    small_sq, total_loss = 0.0, 0.0
    for batch in batches:
        loss = loss_fn(model, batch)
        (loss / k).backward()
        total_loss += float(loss.detach())
        if measure:
            cur = _flat_grad(params)
            small_sq += float(((cur - prev) * k).square().sum())  # this batch's own gradient, squared
            prev = cur
    if not measure:
        return total_loss / k, None
    big_sq = float(prev.square().sum())
    return total_loss / k, NormSample(b_small=sizes[0], b_big=sizes[0] * k,
                                      g_small_sq=small_sq / k, g_big_sq=big_sq)


def _batch_len(batch: Any) -> int:
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(first.shape[0])


@dataclass
class NoiseScale:
    """Running means of the |G|^2 and tr(Sigma) estimates; B_simple is their ratio.

    ``decay`` None: plain means over all samples added. A number in (0, 1):
    exponential moving averages with that decay (bias-corrected), which track
    a noise scale that changes during training.
    """

    decay: float | None = None
    g2_: float = 0.0  # averaged |G|^2 estimate
    trace_: float = 0.0  # averaged tr(Sigma) estimate
    n_: int = 0  # samples seen
    _weight: float = field(default=0.0, repr=False)

    def update(self, sample: NormSample) -> "NoiseScale":
        g2, trace = sample.estimates()
        if not (math.isfinite(g2) and math.isfinite(trace)):
            return self
        self.n_ += 1
        if self.decay is None:
            w = 1.0 / self.n_
        else:
            self._weight = self.decay * self._weight + (1.0 - self.decay)
            w = (1.0 - self.decay) / self._weight
        self.g2_ += w * (g2 - self.g2_)
        self.trace_ += w * (trace - self.trace_)
        return self

    @property
    def b_simple(self) -> float:
        """tr(Sigma) / |G|^2; NaN before any sample or while the |G|^2 average is not positive."""
        if self.n_ == 0 or self.g2_ <= 0.0:
            return math.nan
        return self.trace_ / self.g2_


def estimate_noise_scale(model: torch.nn.Module, loss_fn: LossFn, batches: Iterable[Any], *,
                         per_big_batch: int = 4) -> NoiseScale:
    """B_simple of a fixed model: groups of ``per_big_batch`` small batches form each big batch.

    The model's parameters are not changed (gradients are cleared afterwards).
    """
    estimator = NoiseScale()
    group: list[Any] = []
    for batch in batches:
        group.append(batch)
        if len(group) == per_big_batch:
            _, sample = accumulate_gradients(model, loss_fn, group)
            if sample is not None:
                estimator.update(sample)
            group = []
    model.zero_grad(set_to_none=True)
    return estimator
