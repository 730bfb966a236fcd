"""Tiny synthetic studies for the report tests (fixtures in conftest.py), written through the store API.

Runs are not trained: each gets a law-like result so the fits have something
true to recover.

* MNIST (``mnist_cnn``): loss = E + A/N^alpha + B/D^beta, worse away from its
  width's best LR, worse with dropout (more so for narrow models), 1% seed
  noise. The study name, a config value and a note carry HTML to test escaping.
* LM (``lm``): an IsoFLOP design over the real size ladder (exact parameter
  counts and FLOPs per token), with non-embedding counts, 6ND FLOPs, loss
  curves and noise-scale curves in the metrics, as the LM family stores them.
* ``toy_mlp``: a family no module defines (so nothing can be imported for
  it): an N x D grid with no accuracy and no curves.
"""

from __future__ import annotations

import math

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
VERSIONS = {"python": "3.11", "torch": "test", "numpy": "test", "machine": "x86_64", "processor": "synthetic CPU"}

LM_STUDY = "lm-synthetic"
LM_LAW = dict(E=1.6, A=40.0, alpha=0.35, B=90.0, beta=0.3)  # L(N total, D tokens)
LM_BUDGETS = (3e11, 1e12, 3e12, 1e13)
LM_SIZES = ("d16-l1", "d24-l1", "d32-l1", "d48-l1", "d48-l2", "d64-l2", "d80-l2", "d96-l2", "d96-l3")
LM_RUN = {"context": 128, "batch_size": 16, "tokenizer": "bpe", "vocab_size": 512}

TOY_STUDY = "toy-grid"
TOY_FAMILY = "toy_mlp"
TOY_LAW = dict(E=0.3, A=8.0, alpha=0.5, B=12.0, beta=0.45)
TOY_HIDDEN = (8, 16, 32, 64, 128)
TOY_SAMPLES = (500, 1000, 2000, 4000, 8000)


def best_lr(width: int) -> float:
    return 0.1 if width <= 8 else 0.03


def synthetic_result(cfg: dict) -> dict:
    """A finished MNIST run's result from the known law, deterministic in the config."""
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


def lm_size_facts(size: str) -> tuple[int, int, int]:
    """(total params, non-embedding params, exact training FLOPs per token) of a ladder size."""
    from scalinglab.families.lm.model import flops_per_token, param_counts, size_config

    cfg = size_config(size, vocab_size=LM_RUN["vocab_size"], context=LM_RUN["context"])
    counts = param_counts(cfg)
    return counts["total"], counts["non_embedding"], flops_per_token(cfg)["train"]


def lm_configs() -> list[dict]:
    """Per budget, the 5 ladder sizes around 40 tokens per parameter (the LM preset's IsoFLOP design)."""
    configs = []
    for budget in LM_BUDGETS:
        ratio = [abs(math.log(budget / lm_size_facts(s)[2] / lm_size_facts(s)[0] / 40)) for s in LM_SIZES]
        lo = max(0, min(int(np.argmin(ratio)) - 2, len(LM_SIZES) - 5))
        for size in LM_SIZES[lo:lo + 5]:
            configs.append({**LM_RUN, "size": size, "tokens": float(f"{budget / lm_size_facts(size)[2]:.6g}"),
                            "seed": 0})
    return configs


def lm_result(cfg: dict) -> dict:
    """An LM run's result as the family stores it: exact counts, curves and noise scale in the metrics."""
    n, ne, fpt = lm_size_facts(cfg["size"])
    d = int(cfg["tokens"])
    rng = np.random.default_rng([n, d])
    loss = (LM_LAW["E"] + LM_LAW["A"] / n ** LM_LAW["alpha"] + LM_LAW["B"] / d ** LM_LAW["beta"]) \
        * np.exp(0.003 * rng.standard_normal())
    t = np.geomspace(d / 40, d, 12)
    train = loss - 0.02 + 2.0 * (t / d) ** -0.5 * (d / 1e6) ** -0.3 * 0.1
    curve = [[float(a), float(b)] for a, b in zip(t, train)]
    noise = [[float(a), float(b), float(300 * b ** -4.8 * (1 + 0.05 * rng.standard_normal()))] for a, b in
             zip(t, train)]
    return {"params": n, "flops": float(fpt * d), "examples": d, "val_loss": float(loss),
            "val_acc": float(0.9 - 0.2 * loss), "curve": curve,
            "metrics": {"params_total": n, "params_non_embedding": ne, "flops_per_token": fpt,
                        "flops_6nd": float(6 * n * d), "epochs": d / 3e5, "tokens_per_param": d / n,
                        "noise_scale": noise[-1][2], "noise_curve": noise, "lr": 0.25 / 64}}


def toy_configs() -> list[dict]:
    return [{"hidden": h, "samples": s, "seed": seed} for h in TOY_HIDDEN for s in TOY_SAMPLES for seed in (0, 1)]


def toy_result(cfg: dict) -> dict:
    """A made-up MLP family: N = 794 h + 10, C = 3 x 6 N D (three epochs), no accuracy, no curve."""
    n, d = 794 * cfg["hidden"] + 10, cfg["samples"]
    rng = np.random.default_rng([cfg["hidden"], d, cfg["seed"]])
    loss = (TOY_LAW["E"] + TOY_LAW["A"] / n ** TOY_LAW["alpha"] + TOY_LAW["B"] / d ** TOY_LAW["beta"]) \
        * np.exp(0.01 * rng.standard_normal())
    return {"params": n, "flops": float(18 * n * d), "examples": d, "val_loss": float(loss), "metrics": {}}


def add_study(store: RunStore, name: str, configs: list[dict], info: dict, *, family: str = "mnist_cnn",
              result=synthetic_result) -> None:
    keys = store.add_study(name, family, configs, info=info)
    for key, cfg in zip(keys, configs):
        assert store.claim(key, "test")
        store.finish(key, result(cfg), wall_s=0.5 + len(str(cfg)) / 100, code_version="test", versions=VERSIONS)


def build_db(path) -> None:
    """One database with four studies: an older MNIST smoke study, the MNIST one, the LM one and toy_mlp's."""
    with RunStore(path) as store:
        store.conn.execute("PRAGMA synchronous = OFF")  # a throwaway file: skip the fsync per run
        add_study(store, OLDER, [dict(width=w, fraction=f, seed=0, lr=0.1) for w in (4, 8) for f in (1.0, 0.5)], {})
        configs = [dict(width=w, fraction=f, seed=s, dropout=d, lr=lr, batch_size=128, precision="bf16",
                        data=INJECT)
                   for w in WIDTHS for f in FRACTIONS for d in DROPOUTS for lr in LRS for s in SEEDS]
        add_study(store, STUDY, configs, {"grid": {"widths": list(WIDTHS), "note": INJECT}, "cpus": 2,
                                          "workers": 2, "sweep_wall_s": 12.5, "notes": NOTE})
        add_study(store, LM_STUDY, lm_configs(), {"preset": {"name": "synthetic", "budgets": list(LM_BUDGETS)}},
                  family="lm", result=lm_result)
        add_study(store, TOY_STUDY, toy_configs(), {}, family=TOY_FAMILY, result=toy_result)
