"""Your own model family: a one-hidden-layer MLP on MNIST, written the way a user would.

This file lives outside the scalinglab package on purpose: it is everything
a researcher writes to run a scaling study of their own model. It implements
the Family protocol (``scalinglab.Family``): a declared ``name``, the
training FLOPs of a run before training (``cost``), data loading shared
between runs (``data_key``, ``load_data``) and ``train(config, data)``
returning a ``scalinglab.RunResult``.

A run config is a flat dict: ``hidden`` (units), ``examples`` (training
images seen, once each), ``seed``, and optionally ``lr`` and ``batch_size``.

Sweep it from the command line (from this folder, or with it on PYTHONPATH)::

    scalinglab study --family mlp_family:FAMILY --config mlp_design.toml --db mlp.db

or from Python: see ``mlp_study.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from scalinglab import ConfigError, RunResult

N_IN, N_OUT = 28 * 28, 10
EVAL_IMAGES = 2_000  # the first images of the MNIST test set


def n_params(hidden: int) -> int:
    """Weights and biases of 784 -> hidden -> 10."""
    return N_IN * hidden + hidden + hidden * N_OUT + N_OUT


def train_flops_per_example(hidden: int) -> int:
    """Exact multiply-add FLOPs of one training example: forward 2 per weight, backward 4 (inputs and weights),
    plus the biases (forward 1, backward 1); activations and the loss are left out (under 1%)."""
    weights = N_IN * hidden + hidden * N_OUT
    return 6 * weights + 2 * (hidden + N_OUT)


def eval_flops(hidden: int) -> int:
    return EVAL_IMAGES * (2 * (N_IN * hidden + hidden * N_OUT) + hidden + N_OUT)


def _check(config: dict) -> dict:
    allowed = {"hidden", "examples", "seed", "lr", "batch_size"}
    unknown = set(config) - allowed
    if unknown:
        raise ConfigError(f"example_mlp: unknown run setting {sorted(unknown)[0]!r}; known: {', '.join(sorted(allowed))}")
    for key in ("hidden", "examples"):
        v = config.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"example_mlp: {key} = {v!r} is invalid: must be a positive integer")
    if config["examples"] > 60_000:
        raise ConfigError("example_mlp: examples must be at most 60,000 (one pass over MNIST's training set)")
    return {"seed": 0, "lr": 3e-3, "batch_size": 64, **config}


class MlpFamily:
    name = "example_mlp"  # stored with every run and hashed into its key

    def cost(self, config: dict) -> float:
        """FLOPs of the whole run (training and evaluation), for scheduling and the ETA."""
        c = _check(config)
        return float(train_flops_per_example(c["hidden"]) * c["examples"] + eval_flops(c["hidden"]))

    def size(self, config: dict) -> tuple[int, int]:
        """(N, D) before training: what an adaptive study (``--adaptive``) plans with."""
        c = _check(config)
        return n_params(c["hidden"]), c["examples"]

    def data_key(self, config: dict):
        return "mnist"  # every run shares one copy of the data

    def load_data(self, config: dict):
        from scalinglab.data.mnist import load_mnist

        d = load_mnist()
        norm = lambda u8: torch.from_numpy(u8).float().flatten(1) / 255.0
        return (norm(d.train_images), torch.from_numpy(d.train_labels).long(),
                norm(d.test_images[:EVAL_IMAGES]), torch.from_numpy(d.test_labels[:EVAL_IMAGES]).long())

    def train(self, config: dict, data) -> RunResult:
        c = _check(config)
        x_train, y_train, x_test, y_test = data
        g = torch.Generator().manual_seed(c["seed"])
        model = torch.nn.Sequential(torch.nn.Linear(N_IN, c["hidden"]), torch.nn.ReLU(),
                                    torch.nn.Linear(c["hidden"], N_OUT))
        with torch.no_grad():  # initialise from the run's own generator, so seeds are reproducible
            for p in model.parameters():
                p.uniform_(-1.0, 1.0, generator=g).mul_(1.0 / math.sqrt(p.shape[-1]))
        opt = torch.optim.Adam(model.parameters(), lr=c["lr"])
        order = torch.randperm(len(x_train), generator=g)[:c["examples"]]
        curve = []
        for start in range(0, c["examples"], c["batch_size"]):
            idx = order[start:start + c["batch_size"]]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            curve.append([start + len(idx), loss.item()])
        with torch.no_grad():
            logits = model(x_test)
            val_loss = float(F.cross_entropy(logits, y_test))
            val_acc = float((logits.argmax(1) == y_test).float().mean())
        return RunResult(params=n_params(c["hidden"]), flops=float(train_flops_per_example(c["hidden"]) * c["examples"]),
                         examples=c["examples"],
                         val_loss=val_loss, val_acc=val_acc, curve=curve[:: max(1, len(curve) // 50)])


FAMILY = MlpFamily()
