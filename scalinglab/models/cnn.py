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
first applies the ReLU to a quarter of the values.

Counts are exact: ``num_params`` matches ``sum(p.numel())`` and
``train_flops_per_example`` matches what ``torch.utils.flop_counter`` counts
for one forward + backward pass (2 FLOPs per multiply-add of every conv and
matmul; elementwise ops, pooling and the loss are not counted, as there).
"""

from __future__ import annotations

import math

import torch
from torch import nn

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
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.pool(self.conv1(x)))  # (B, w, 14, 14)
        x = torch.relu(self.pool(self.conv2(x)))  # (B, 2w, 7, 7)
        return self.fc(self.drop(x.flatten(1)))  # (B, 10)

    def layers(self) -> list[tuple[nn.Module, int]]:
        """(layer, fan_in) for every weight layer: the per-layer LR rule uses fan_in."""
        return [(self.conv1, 9), (self.conv2, 9 * self.width), (self.fc, 98 * self.width)]


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


class GroupedMnistCNN(nn.Module):
    """G independent ``MnistCNN``s of one width, trained as one computation.

    Model g sees its own batch: the input (G, B, 1, 28, 28) is laid out as
    (B, G, 28, 28) so that grouped convolutions (``groups=G``) and a batched
    matmul apply model g's weights to model g's images only. The maths of each
    model is unchanged; fewer, larger kernels cut the per-step overhead that
    dominates narrow models on a CPU.
    """

    def __init__(self, models: list[MnistCNN]):
        super().__init__()
        g, w = len(models), models[0].width
        if any(m.width != w for m in models):
            raise ValueError("grouped models must share one width")
        self.groups, self.width = g, w
        self.conv1 = nn.Conv2d(g, g * w, 3, padding=1, groups=g)
        self.conv2 = nn.Conv2d(g * w, g * 2 * w, 3, padding=1, groups=g)
        self.fc_weight = nn.Parameter(torch.stack([m.fc.weight.detach().t() for m in models]))  # (G, 98w, 10)
        self.fc_bias = nn.Parameter(torch.stack([m.fc.bias.detach() for m in models]).unsqueeze(1))  # (G, 1, 10)
        self.drop = nn.Dropout(models[0].drop.p)
        self.pool = nn.MaxPool2d(2)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.cat([m.conv1.weight for m in models]))
            self.conv1.bias.copy_(torch.cat([m.conv1.bias for m in models]))
            self.conv2.weight.copy_(torch.cat([m.conv2.weight for m in models]))
            self.conv2.bias.copy_(torch.cat([m.conv2.bias for m in models]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g, b = x.shape[0], x.shape[1]
        x = x.reshape(g, b, 28, 28).transpose(0, 1)  # (B, G, 28, 28)
        x = torch.relu(self.pool(self.conv1(x)))  # (B, G*w, 14, 14)
        x = torch.relu(self.pool(self.conv2(x)))  # (B, G*2w, 7, 7)
        x = x.reshape(b, g, 2 * self.width * 49).transpose(0, 1)  # (G, B, 98w)
        return torch.baddbmm(self.fc_bias, self.drop(x), self.fc_weight)  # (G, B, 10)

    def layers(self) -> list[tuple[list[nn.Parameter], int]]:
        """(parameters, fan_in) per layer of each member model, as in ``MnistCNN.layers``."""
        w = self.width
        return [(list(self.conv1.parameters()), 9), (list(self.conv2.parameters()), 9 * w),
                ([self.fc_weight, self.fc_bias], 98 * w)]

    def member(self, i: int) -> MnistCNN:
        """Model i as a plain ``MnistCNN`` (a copy of its current weights)."""
        w = self.width
        m = MnistCNN(w, self.drop.p)
        with torch.no_grad():
            m.conv1.weight.copy_(self.conv1.weight[i * w:(i + 1) * w])
            m.conv1.bias.copy_(self.conv1.bias[i * w:(i + 1) * w])
            m.conv2.weight.copy_(self.conv2.weight[i * 2 * w:(i + 1) * 2 * w])
            m.conv2.bias.copy_(self.conv2.bias[i * 2 * w:(i + 1) * 2 * w])
            m.fc.weight.copy_(self.fc_weight[i].t())
            m.fc.bias.copy_(self.fc_bias[i, 0])
        return m
