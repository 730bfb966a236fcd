"""What the sweep engine needs to know about a model family.

A family turns a run's config (a flat JSON-able dict) into a trained result.
The engine never looks inside configs: it hashes them to a run key, asks the
family for the run's cost (FLOPs, for longest-first scheduling and the ETA),
loads the family's data once per worker, and calls ``train``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(kw_only=True)
class RunResult:
    """What one finished run reports; the store keeps every field."""

    params: int  # trainable parameters N (the family's headline count)
    flops: float  # training FLOPs C = flops per example x examples seen
    examples: int  # training examples (MNIST images, LM tokens) seen: D
    val_loss: float  # mean loss on the full validation set
    val_acc: float | None = None  # classification accuracy, if the task has one
    curve: list[list[float]] = field(default_factory=list)  # [[examples_seen, train_loss], ...]
    metrics: dict[str, Any] = field(default_factory=dict)  # family extras (e.g. noise scale)

    @property
    def diverged(self) -> bool:
        return not math.isfinite(self.val_loss)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def config_from_dict(cls, config: dict, what: str):
    """Build the run-config dataclass ``cls`` from a flat dict, naming the first unknown key."""
    from dataclasses import fields

    from scalinglab.errors import ConfigError

    known = {f.name for f in fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigError(f"unknown {what} run setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return cls(**config)


class Family(Protocol):
    """A model family the sweep engine can run (see ``scalinglab.sweep.mnist``)."""

    name: str  # stored with every run, e.g. "mnist_cnn"

    def cost(self, config: dict) -> float:
        """Training FLOPs of the run, computed without training (scheduling, ETA)."""

    def data_key(self, config: dict) -> Any:
        """Runs with equal keys share the object ``load_data`` returns."""

    def load_data(self, config: dict) -> Any:
        """Load what ``train`` needs; called once per worker per data key."""

    def train(self, config: dict, data: Any) -> RunResult:
        """Train one run to completion. A NaN/inf loss is returned, not raised."""


# Family name -> "module:attribute" of a Family instance. Imported lazily so a
# worker process only pays for the family it runs.
FAMILIES = {
    "mnist_cnn": "scalinglab.train.mnist:FAMILY",
    "lm": "scalinglab.train.lm:FAMILY",
}


def get_family(name: str) -> Family:
    """A registered family by name, or any family object given as ``"module:attribute"``."""
    import importlib

    from scalinglab.errors import ConfigError

    if name not in FAMILIES and ":" not in name:
        raise ConfigError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)} "
                          "(or give your own as 'module:attribute')")
    module, attr = FAMILIES.get(name, name).split(":")
    return getattr(importlib.import_module(module), attr)
