"""A tiny synthetic MNIST study for the report tests (fixtures in conftest.py).

Runs are not trained: each gets a law-like result (loss = E + A/N^alpha +
B/D^beta, worse away from its width's best LR, worse with dropout (more so
for narrow models), 1% seed noise) so the fits have something true to
recover. The study name, a config value and a note carry HTML to test
escaping.
"""

from __future__ import annotations

import numpy as np

from scalinglab.families.mnist.model import num_params, train_flops_per_example
from scalinglab.store import RunStore

LAW = dict(E=0.02, A=20.0, alpha=0.6, B=4.0, beta=0.4)  # L(N, D), D in examples: optima inside the grid
WIDTHS = (4, 6, 8, 11, 16, 23)
FRACTIONS = (1.0, 0.5, 0.25, 0.125, 0.0625)
SEEDS = (0, 1)
DROPOUTS = (0.0, 0.2)
LRS = (0.03, 0.1)
INJECT = '<script>document.title="INJECTED"</script>'
STUDY = f"tiny {INJECT}"
OLDER = "older-smoke"
NOTE = "<img src=x onerror=\"document.title='INJECTED'\">"


def best_lr(width: int) -> float:
    return 0.1 if width <= 8 else 0.03


def synthetic_result(cfg: dict) -> dict:
    """A finished run's result from the known law, deterministic in the config."""
    w, f, seed, drop, lr = cfg["width"], cfg["fraction"], cfg["seed"], cfg.get("dropout", 0.0), cfg["lr"]
    n, d = num_params(w), int(60000 * f)
    law = LAW["E"] + LAW["A"] / n ** LAW["alpha"] + LAW["B"] / d ** LAW["beta"]
    rng = np.random.default_rng([w, int(1e6 * f), seed, int(100 * drop), int(1e4 * lr)])
    lr_penalty = 1 + 0.2 * np.log10(lr / best_lr(w)) ** 2
    loss = law * (1 + 0.6 * drop / np.sqrt(w)) * lr_penalty * np.exp(0.01 * rng.standard_normal())
    acc = 1 - 0.3 * loss ** 1.1
    seen = np.linspace(d / 8, d, 8).round()
    curve = [[float(s), float(loss * (1 + 3 * (d / s - 1) / 8 + 0.5 * (s == seen[0])))] for s in seen]
    return {"params": n, "flops": float(train_flops_per_example(w) * d), "examples": d, "val_loss": float(loss),
            "val_acc": float(acc), "curve": curve, "metrics": {"steps": 8}}


def add_study(store: RunStore, name: str, configs: list[dict], info: dict) -> None:
    keys = store.add_study(name, "mnist_cnn", configs, info=info)
    for key, cfg in zip(keys, configs):
        assert store.claim(key, "test")
        store.finish(key, synthetic_result(cfg), wall_s=0.5 + cfg["width"] / 10, code_version="test",
                     versions={"python": "3.11", "torch": "test", "numpy": "test", "machine": "x86_64",
                               "processor": "synthetic CPU"})
