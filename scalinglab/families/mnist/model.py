"""The MNIST CNN family of the scaling exercise.

Two 3x3 conv blocks and a linear classifier; the channel width ``w`` is the
knob. Widths grow by powers of sqrt(2) (rounded), so FLOPs per example,
dominated by the second conv (w -> 2w channels), roughly double per step:

    input (B, 1, 28, 28)
    conv 3x3, 1 -> w,   pad 1   (B, w, 28, 28)
    max-pool 2, ReLU            (B, w, 14, 14)
    conv 3x3, w -> 2w,  pad 1   (B, 2w, 14, 14)
    max-pool 2, ReLU            (B, 2w, 7, 7)
    flatten, dropout p          (B, 98w)
    linear 98w -> 10            (B, 10) logits

Max-pool comes before ReLU: the two commute (both are monotone), and pooling
first applies the ReLU to a quarter of the values. Both run as one kernel
each way (:mod:`scalinglab.families.mnist.kernels`, as is the first convolution).

Counts are exact: ``num_params`` matches ``sum(p.numel())`` and
``train_flops_per_example`` matches what ``torch.utils.flop_counter`` counts
for one forward + backward pass (2 FLOPs per multiply-add of every conv and
matmul; elementwise ops, pooling and the loss are not counted, as there).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from scalinglab.families.mnist.kernels import conv1, pool_relu

WIDTH_BASE = 4
N_WIDTH_STEPS = 9  # the exercise's full ladder: 4, 6, 8, 11, 16, 23, 32, 45, 64


def width_ladder(n: int = N_WIDTH_STEPS, base: int = WIDTH_BASE) -> list[int]:
    """Widths base * sqrt(2)^k for k < n, rounded: [4, 6, 8, 11, 16, 23, 32, 45, 64]."""
    return [round(base * math.sqrt(2) ** k) for k in range(n)]


class MnistCNN(nn.Module):
    def __init__(self, width: int, dropout: float = 0.0):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be a positive integer, got {width}")
        self.width = width
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * width * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pool_relu(conv1(x, self.conv1.weight, self.conv1.bias))  # relu(max_pool2d(., 2)): (B, w, 14, 14)
        x = pool_relu(self.conv2(x))  # (B, 2w, 7, 7)
        # The classifier is fc(x.flatten(1)). Flattening in (h, w, c) order instead, with fc's
        # columns permuted to match, is the same function of the same parameters; for a
        # channels_last x it is a free view, and its gradient stays channels_last too (the
        # (c, h, w) flatten copies forward and hands the backward a mixed-layout gradient).
        weight = _hwc_columns(self.fc.weight, x.shape[1])
        return F.linear(self.drop(x.permute(0, 2, 3, 1).flatten(1)), weight, self.fc.bias)  # (B, 10)

    def layers(self) -> list[tuple[nn.Module, int]]:
        """(layer, fan_in) for every weight layer: the per-layer LR rule uses fan_in."""
        return [(self.conv1, 9), (self.conv2, 9 * self.width), (self.fc, 98 * self.width)]


class StackedCNN(nn.Module):
    """K ``MnistCNN`` of one width trained as one computation, each as if alone.

    Each layer's parameters of the K models are stacked into one tensor. The
    convolutions are grouped (group k holds model k's channels) and the
    classifier is a batched matmul, so no value of one model ever meets
    another's: every model gets its own forward pass, gradient and Adam update,
    from its own inputs, while the K models cost one call per layer instead of
    K. The classifier's columns are stored in (h, w, c) order, the order in
    which the channels_last features lie (the same function as ``MnistCNN``'s).
    """

    def __init__(self, models: list[MnistCNN]):
        super().__init__()
        widths = {m.width for m in models}
        if len(widths) != 1:
            raise ValueError(f"stacked models must share one width, got {sorted(widths)}")
        self.k, self.width = len(models), models[0].width
        stack = lambda tensors, cat=True: nn.Parameter((torch.cat if cat else torch.stack)(
            [t.detach() for t in tensors]).clone())
        self.conv1_weight = stack(m.conv1.weight for m in models)  # (K w, 1, 3, 3)
        self.conv1_bias = stack(m.conv1.bias for m in models)
        self.conv2_weight = stack(m.conv2.weight for m in models)  # (K 2w, w, 3, 3)
        self.conv2_bias = stack(m.conv2.bias for m in models)
        self.fc_weight = stack([_hwc_columns(m.fc.weight, 2 * self.width) for m in models], cat=False)  # (K, 10, 98w)
        self.fc_bias = stack([m.fc.bias for m in models], cat=False)  # (K, 10)

    def forward(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (K, B, 10) of (B, K, 28, 28) inputs (image k for model k), or of (B, 1, 28, 28) shared by all.

        ``masks`` (K, B, 98 w) multiply each model's classifier input (dropout, already scaled).
        """
        k, w = self.k, self.width
        h = pool_relu(conv1(x, self.conv1_weight, self.conv1_bias))
        h = pool_relu(F.conv2d(h, self.conv2_weight, self.conv2_bias, padding=1, groups=k))  # (B, 2wK, 7, 7)
        b = h.shape[0]
        # channels_last: the features lie as (B, 7, 7, K, 2w); model k's are its (h, w, c) rows
        feats = h.permute(0, 2, 3, 1).reshape(b, 49, k, 2 * w).permute(2, 0, 1, 3).reshape(k, b, 98 * w)
        if masks is not None:
            feats = feats * masks
        return torch.baddbmm(self.fc_bias.unsqueeze(1), feats, self.fc_weight.transpose(1, 2))

    def layers(self) -> list[tuple[list[nn.Parameter], int]]:
        """(parameters, fan_in) per layer, as ``MnistCNN.layers`` gives them for one model."""
        w = self.width
        return [([self.conv1_weight, self.conv1_bias], 9), ([self.conv2_weight, self.conv2_bias], 9 * w),
                ([self.fc_weight, self.fc_bias], 98 * w)]


def _hwc_columns(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A classifier weight over (c, h, w)-flattened features, its columns reordered to (h, w, c)."""
    return weight.unflatten(1, (channels, 7, 7)).permute(0, 2, 3, 1).flatten(1)


def num_params(width: int) -> int:
    """Exact trainable parameter count of ``MnistCNN(width)``."""
    w = width
    conv1 = 9 * w + w
    conv2 = 9 * w * 2 * w + 2 * w
    fc = 98 * w * 10 + 10
    return conv1 + conv2 + fc


def forward_macs_per_example(width: int) -> tuple[int, int, int]:
    """Multiply-adds of (conv1, conv2, fc) in one forward pass of one example."""
    w = width
    conv1 = 28 * 28 * w * 9 * 1
    conv2 = 14 * 14 * (2 * w) * 9 * w
    fc = 98 * w * 10
    return conv1, conv2, fc


def train_flops_per_example(width: int) -> int:
    """FLOPs of one forward + backward pass for one example.

    Forward: 2 per multiply-add. Backward: the weight gradient costs as much
    as the forward pass for every layer, the input gradient too except for
    conv1, whose input (the image) needs none.
    """
    conv1, conv2, fc = forward_macs_per_example(width)
    forward = 2 * (conv1 + conv2 + fc)
    backward = 2 * forward - 2 * conv1
    return forward + backward


def forward_flops_per_example(width: int) -> int:
    return 2 * sum(forward_macs_per_example(width))

