"""One-epoch training of the MNIST CNN family: the exercise's unit of work.

A run is a flat config dict (see :class:`MnistRunConfig`). It trains a
``MnistCNN`` for one epoch on a nested data fraction with Adam, where each
layer's learning rate is ``lr / sqrt(fan_in)`` (the exercise's rule: LR
proportional to the layer's Kaiming init scale), then measures loss and
accuracy on all 10,000 test images.

Speed without changing the maths: batches are gathered by index from one
contiguous tensor (no DataLoader), the model runs channels_last, Adam is the
fused kernel, and ``precision="bf16"`` autocasts convs and matmuls to
bfloat16 with fp32 master weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from scalinglab.data.mnist import N_TEST, N_TRAIN, fraction_indices, load_mnist
from scalinglab.errors import ConfigError
from scalinglab.families.mnist.model import (
    MnistCNN,
    StackedCNN,
    forward_flops_per_example,
    num_params,
    train_flops_per_example,
)
from scalinglab.sweep.family import RunResult, config_from_dict

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of the 60,000 training images, pixel scale [0, 1]
DEFAULT_LR = 0.1  # base LR: layer LR = DEFAULT_LR / sqrt(fan_in); measured in docs/lr-sweep.md
CURVE_POINTS = 32  # train-loss points recorded per run
EVAL_BATCH = 128  # small enough for the activations to stay in cache (bench/cnn_step_speed.py)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # True is an int to Python, not a width


def _device_ok(device) -> bool:
    if device == "cpu":
        return True
    if not (isinstance(device, str) and (device == "cuda" or device.startswith("cuda:"))):
        return False
    try:
        torch.device(device)
    except RuntimeError:
        return False
    index = int(device.split(":")[1]) if ":" in device else 0
    return torch.cuda.is_available() and index < torch.cuda.device_count()


@dataclass(kw_only=True, frozen=True)
class MnistRunConfig:
    width: int  # channels of the first conv; the second has 2 * width
    fraction: float  # share of the training set seen, once (nested subsets)
    seed: int = 0  # init, data order and dropout masks
    dropout: float = 0.0  # before the classifier
    lr: float = DEFAULT_LR  # base LR: a layer's Adam LR is lr / sqrt(fan_in)
    batch_size: int = 128
    precision: str = "fp32"  # "fp32" or "bf16" (autocast, fp32 master weights)
    train_limit: int | None = None  # use only the first k examples of the permutation as "all data"
    data: str | None = None  # folder of IDX files; None: the built-in registry copy
    device: str = "cpu"  # "cuda" (or "cuda:N") trains on a GPU; the C kernels are CPU-only

    def __post_init__(self):
        checks = [
            ("width", _is_int(self.width) and self.width >= 1, "a positive integer"),
            ("fraction", 0 < self.fraction <= 1, "in (0, 1]"),
            ("seed", _is_int(self.seed) and 0 <= self.seed < 2 ** 63, "an integer in [0, 2^63)"),
            ("dropout", 0 <= self.dropout < 1, "in [0, 1)"),
            ("lr", self.lr > 0 and math.isfinite(self.lr), "a positive number"),
            ("batch_size", _is_int(self.batch_size) and self.batch_size >= 1, "a positive integer"),
            ("precision", self.precision in ("fp32", "bf16"), "'fp32' or 'bf16'"),
            ("train_limit", self.train_limit is None or (_is_int(self.train_limit)
                                                         and 1 <= self.train_limit <= N_TRAIN),
             f"empty or an integer between 1 and {N_TRAIN}"),
            ("data", self.data is None or (isinstance(self.data, str) and Path(self.data).is_dir()),
             "empty (the built-in copy) or an existing folder of MNIST IDX files"),
        ]
        checks.append(("device", _device_ok(self.device),
                       "'cpu', or 'cuda'/'cuda:N' where torch sees a CUDA device (none here: use cpu)"))
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"{name} = {getattr(self, name)!r} is invalid: must be {allowed}")

    @classmethod
    def from_dict(cls, config: dict) -> "MnistRunConfig":
        return config_from_dict(cls, config, "MNIST")

    @property
    def n_examples(self) -> int:
        return len(fraction_indices(self.fraction, self.train_limit or N_TRAIN))


@dataclass
class MnistTensors:
    """The data set as normalised float tensors, built once per worker."""

    x_train: torch.Tensor  # (60000, 1, 28, 28) float32
    y_train: torch.Tensor  # (60000,) int64
    x_test: torch.Tensor  # (10000, 1, 28, 28) float32
    y_test: torch.Tensor  # (10000,) int64

    @classmethod
    def load(cls, source: str | None = None) -> "MnistTensors":
        d = load_mnist(source)
        norm = lambda u8: ((torch.from_numpy(u8).float() / 255 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)
        return cls(norm(d.train_images), torch.from_numpy(d.train_labels),
                   norm(d.test_images), torch.from_numpy(d.test_labels))


def make_optimizer(layers, lr: float) -> torch.optim.Adam:
    """Adam with one parameter group per layer, LR = lr / sqrt(fan_in)."""
    groups = [{"params": list(params), "lr": lr / math.sqrt(fan_in)} for params, fan_in in layers]
    return torch.optim.Adam(groups, fused=True)


class CurveRecorder:
    """Mean train loss over ~CURVE_POINTS equal windows of a run's steps."""

    def __init__(self, n_steps: int, batch_size: int, n_examples: int):
        self.marks = set(np.linspace(0, n_steps, CURVE_POINTS + 1).round().astype(int)[1:])
        self.batch_size, self.n_examples = batch_size, n_examples
        self.window: list[float] = []
        self.curve: list[list[float]] = []

    def add(self, step: int, loss: float) -> None:
        self.window.append(loss)
        if step + 1 in self.marks:
            seen = min((step + 1) * self.batch_size, self.n_examples)
            self.curve.append([seen, float(np.mean(self.window))])
            self.window = []


def data_order(cfg: MnistRunConfig) -> torch.Tensor:
    """Training example indices in the order the run visits them."""
    idx = torch.from_numpy(fraction_indices(cfg.fraction, cfg.train_limit or N_TRAIN))
    g = torch.Generator().manual_seed(cfg.seed)
    return idx[torch.randperm(len(idx), generator=g)]


def evaluate_models(net: StackedCNN, data: MnistTensors, precision: str) -> list[tuple[float, float]]:
    """(mean cross-entropy, accuracy) on the full test set, for each of the stacked models."""
    net.eval()
    device = net.conv1_weight.device
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    total_loss = torch.zeros(net.k, dtype=torch.float64, device=device)
    correct = torch.zeros(net.k, dtype=torch.long, device=device)
    with torch.no_grad(), _autocast(precision, device.type):
        for i in range(0, N_TEST, EVAL_BATCH):
            logits = net(x_test[i:i + EVAL_BATCH]).float()  # (K, b, 10): one input for all K
            y = y_test[i:i + EVAL_BATCH]
            ce = F.cross_entropy(logits.flatten(0, 1), y.repeat(net.k), reduction="none")
            total_loss += ce.view(net.k, -1).sum(1)
            correct += (logits.argmax(2) == y).sum(1)
    net.train()
    return [(loss / N_TEST, hits / N_TEST) for loss, hits in zip(total_loss.tolist(), correct.tolist())]


def evaluate(model: MnistCNN, data: MnistTensors, precision: str) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of one model on the full test set."""
    return evaluate_models(StackedCNN([model]).to(memory_format=torch.channels_last), data, precision)[0]


def _autocast(precision: str, device_type: str = "cpu"):
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


BATCH_MAX_WIDTH = 8  # widest model trained in batches (bench/batched_training.py)
BATCH_FIELDS = ("width", "fraction", "lr", "batch_size", "precision", "train_limit", "data", "device")


def train_runs(cfgs: list[MnistRunConfig], data: MnistTensors) -> list[RunResult]:
    """Train runs that differ only in seed and dropout as one computation (:class:`StackedCNN`).

    Each run has its own initial weights, data order, dropout masks and
    divergence check, exactly as when trained alone (``train_runs([cfg])``);
    they share the step count, so they must agree on ``BATCH_FIELDS``.
    """
    for f in BATCH_FIELDS:
        if len({getattr(c, f) for c in cfgs}) != 1:
            raise ValueError(f"runs trained together must share {f}; got {[getattr(c, f) for c in cfgs]}")
    models, masks_from = [], []
    for cfg in cfgs:
        torch.manual_seed(cfg.seed)
        models.append(MnistCNN(cfg.width, cfg.dropout))
        g = torch.Generator()
        g.set_state(torch.get_rng_state())  # dropout draws continue the seed's stream after the init
        masks_from.append(g)
    device = torch.device(cfgs[0].device)
    net = StackedCNN(models).to(device=device, memory_format=torch.channels_last)
    opt = make_optimizer(net.layers(), cfgs[0].lr)
    order = torch.stack([data_order(cfg) for cfg in cfgs], 1).to(device)  # (n, K): step s reads rows of its batch
    n, k, bs, w = len(order), len(cfgs), cfgs[0].batch_size, cfgs[0].width
    n_steps = math.ceil(n / bs)
    images, labels = data.x_train.view(-1, 28, 28).to(device), data.y_train.to(device)
    curves = [CurveRecorder(n_steps, bs, n) for _ in cfgs]
    diverged_at: list[int | None] = [None] * k
    for step in range(n_steps):
        idx = order[step * bs:(step + 1) * bs]  # (b, K)
        x = images[idx].contiguous(memory_format=torch.channels_last)  # (b, K, 28, 28): model k's images
        masks = _dropout_masks(cfgs, masks_from, len(idx), 98 * w)  # drawn on the CPU: the same on any device
        with _autocast(cfgs[0].precision, device.type):
            logits = net(x, None if masks is None else masks.to(device))
            losses = F.cross_entropy(logits.flatten(0, 1), labels[idx.T].flatten(),
                                     reduction="none").view(k, -1).mean(1)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()  # model k's parameters see only its own loss
        opt.step()
        for j, value in enumerate(losses.tolist()):
            if diverged_at[j] is not None:
                continue
            if math.isfinite(value):
                curves[j].add(step, value)
            else:
                diverged_at[j] = step
        if all(d is not None for d in diverged_at):
            break
    scores = evaluate_models(net, data, cfgs[0].precision)
    return [_result(cfg, n, n_steps, math.nan if d is not None else loss, None if d is not None else acc,
                    curve.curve, d)
            for cfg, (loss, acc), curve, d in zip(cfgs, scores, curves, diverged_at)]


def _dropout_masks(cfgs: list[MnistRunConfig], gens: list[torch.Generator], b: int, features: int):
    """(K, b, features) scaled keep-masks for the classifier input, or None when no run drops out."""
    if all(cfg.dropout == 0 for cfg in cfgs):
        return None
    masks = torch.ones(len(cfgs), b, features)
    for mask, cfg, g in zip(masks, cfgs, gens):
        if cfg.dropout > 0:
            mask.bernoulli_(1 - cfg.dropout, generator=g).div_(1 - cfg.dropout)
    return masks


def train_run(cfg: MnistRunConfig, data: MnistTensors) -> RunResult:
    """One run alone."""
    return train_runs([cfg], data)[0]


def _result(cfg: MnistRunConfig, n: int, n_steps: int, val_loss: float, val_acc: float | None,
            curve: list, diverged_at: int | None) -> RunResult:
    if not math.isfinite(val_loss):
        val_loss, val_acc = math.nan, None
    return RunResult(
        params=num_params(cfg.width),
        flops=float(train_flops_per_example(cfg.width) * n),
        examples=n,
        val_loss=val_loss,
        val_acc=val_acc,
        curve=curve,
        metrics={"steps": n_steps, "diverged_at_step": diverged_at},
    )


class MnistFamily:
    """The sweep engine's view of the MNIST CNN family."""

    name = "mnist_cnn"
    variant_keys = ("dropout",)  # each dropout rate analysed on its own, then compared
    tuned_keys = ("lr",)  # several LRs per setting: the best seed-mean loss is kept

    def config_defaults(self) -> dict:
        """Values of the config keys a stored run may omit (older runs have no ``dropout``)."""
        from dataclasses import MISSING, fields

        return {f.name: f.default for f in fields(MnistRunConfig) if f.default is not MISSING}

    def config(self, config: dict) -> MnistRunConfig:
        return MnistRunConfig.from_dict(config)

    def cost(self, config: dict) -> float:
        cfg = self.config(config)
        return (train_flops_per_example(cfg.width) * cfg.n_examples
                + forward_flops_per_example(cfg.width) * N_TEST)

    def size(self, config: dict) -> tuple[int, int]:
        """(N, D) of the run before training it: parameters and training images (adaptive studies plan on it)."""
        cfg = self.config(config)
        return num_params(cfg.width), cfg.n_examples

    def steps(self, config: dict) -> int:
        """Optimiser steps plus evaluation batches (the ETA model's per-step term)."""
        cfg = self.config(config)
        return math.ceil(cfg.n_examples / cfg.batch_size) + math.ceil(N_TEST / EVAL_BATCH)

    def data_key(self, config: dict):
        return config.get("data")

    def load_data(self, config: dict) -> MnistTensors:
        return MnistTensors.load(config.get("data"))

    def report_extras(self, study, analysis) -> list:
        """The family's own report figures (:mod:`scalinglab.families.mnist.report`)."""
        from scalinglab.families.mnist.report import report_extras

        return report_extras(study, analysis)

    def train(self, config: dict, data: MnistTensors) -> RunResult:
        return train_run(self.config(config), data)

    def batch_key(self, config: dict):
        """Runs with equal keys are trained together (:meth:`train_batch`): same width, data and steps.

        Only narrow models: there one computation for several runs wins, while from
        width 16 up oneDNN's grouped convolutions lose to separate ones
        (``bench/batched_training.py``).
        """
        cfg = self.config(config)
        return tuple(getattr(cfg, f) for f in BATCH_FIELDS) if cfg.width <= BATCH_MAX_WIDTH else None

    def train_batch(self, configs: list[dict], data: MnistTensors) -> list[RunResult]:
        return train_runs([self.config(c) for c in configs], data)


FAMILY = MnistFamily()
