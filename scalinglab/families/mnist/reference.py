"""The textbook training loop: the yardstick the fast path is checked against.

One model at a time, a ``DataLoader`` over a ``TensorDataset``, fp32,
conv -> ReLU -> max-pool, ``x.flatten(1)``, the optimiser's default
(foreach) Adam. It visits the same examples in the same order, from the same
initial weights (same layers created in the same order), with the same
per-layer learning rates as :func:`scalinglab.families.mnist.train.train_run`, so
without dropout (whose masks fall on the features in another order there) the
two differ by float rounding only. ``tests/test_train_mnist.py`` checks that
(in float64 at every step; in fp32 over the first steps, since Adam can
amplify rounding on near-zero gradients later); ``bench/sweep_speed.py`` times
the two side by side.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from scalinglab.families.mnist.train import MnistRunConfig, MnistTensors, data_order


class TextbookCNN(nn.Module):
    """``MnistCNN``'s layers, created in the same order (so the same init), in textbook order."""

    def __init__(self, width: int, dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * width * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(self.drop(torch.flatten(x, 1)))


def textbook_run(cfg: MnistRunConfig, data: MnistTensors) -> tuple[float, list[float]]:
    """(validation loss, train loss of every step) of one run, the textbook way (fp32 only)."""
    if cfg.precision != "fp32":
        raise ValueError("the textbook loop is the fp32 reference; use precision='fp32'")
    torch.manual_seed(cfg.seed)
    model = TextbookCNN(cfg.width, cfg.dropout)
    fan_in = {"conv1": 9, "conv2": 9 * cfg.width, "fc": 98 * cfg.width}
    opt = torch.optim.Adam([{"params": getattr(model, k).parameters(), "lr": cfg.lr / math.sqrt(f)}
                            for k, f in fan_in.items()])
    train = Subset(TensorDataset(data.x_train, data.y_train), data_order(cfg).tolist())
    losses = []
    for x, y in DataLoader(train, batch_size=cfg.batch_size, shuffle=False):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    total = 0.0
    with torch.no_grad():
        for x, y in DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=1000):
            total += F.cross_entropy(model(x), y, reduction="sum").item()
    return total / len(data.y_test), losses
