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
    """A model family the sweep engine can run: the one thing a user writes to study their own model.

    Required: ``name`` (stored with every run and hashed into its key, so
    moving the module keeps the keys), ``cost``, ``data_key``, ``load_data``
    and ``train``. Optional attributes the studies read when present:
    ``variant_keys`` (config keys compared as variants, e.g. ``("dropout",)``),
    ``tuned_keys`` (keys swept per setting, best kept, e.g. ``("lr",)``),
    ``seed_key`` (default ``"seed"``), ``config_defaults()`` (values of keys a
    config may omit), ``steps(config)`` (optimiser steps, for the ETA),
    ``size(config) -> (N, D)`` (before training; adaptive studies plan on it),
    ``report_extras(study, analysis)`` (extra report figures),
    ``sweep_context(db)`` (a context manager the study pipeline runs its sweep
    in), ``point_runs(runs)`` (the runs a study's points are made of, see
    :mod:`scalinglab.studies.load`) and ``batch_key(config)`` with
    ``train_batch(configs, data) -> [RunResult, ...]`` (runs with one non-None
    key are sent as one task and trained as one computation). Complete
    examples: :mod:`scalinglab.families.mnist.train` and ``examples/``.
    """

    name: str  # e.g. "mnist_cnn"

    def cost(self, config: dict) -> float:
        """Training FLOPs of the run, computed without training (scheduling, ETA); raise to reject a config."""

    def data_key(self, config: dict) -> Any:
        """Runs with equal keys share the object ``load_data`` returns."""

    def load_data(self, config: dict) -> Any:
        """Load what ``train`` needs; called once per worker per data key."""

    def train(self, config: dict, data: Any) -> RunResult:
        """Train one run to completion. A NaN/inf loss is returned, not raised."""


# Family name -> "module:attribute" of a Family instance. Imported lazily so a
# worker process only pays for the family it runs.
FAMILIES = {
    "mnist_cnn": "scalinglab.families.mnist.train:FAMILY",
    "lm": "scalinglab.families.lm.train:FAMILY",
}
REQUIRED = ("name", "cost", "data_key", "load_data", "train")


def get_family(name: str) -> Family:
    """A registered family by name, or any family object given as ``"module:attribute"``."""
    import importlib

    from scalinglab.errors import ConfigError

    if name not in FAMILIES and ":" not in name:
        raise ConfigError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)} "
                          "(or give your own as 'module:attribute')")
    module, attr = FAMILIES.get(name, name).split(":", 1)
    try:
        obj = getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"cannot import family module {module!r} ({exc}); check the spelling and that "
                          "the module is on PYTHONPATH (run from its folder or pip install it)") from None
    except AttributeError:
        raise ConfigError(f"module {module!r} has no attribute {attr!r}; give the family object as "
                          "'module:attribute'") from None
    return check_family(obj, name)


def check_family(obj: Any, what: str = "family") -> Family:
    """``obj`` if it has every part of the Family protocol; otherwise a clear error naming what is missing."""
    from scalinglab.errors import ConfigError

    missing = [a for a in REQUIRED if not hasattr(obj, a)]
    if missing:
        raise ConfigError(f"{what} is not a scalinglab Family: it lacks {', '.join(missing)} "
                          "(see scalinglab.Family and examples/)")
    if not isinstance(obj.name, str) or not obj.name:
        raise ConfigError(f"{what}: Family.name must be a non-empty string, got {obj.name!r}")
    return obj


def family_spec(obj: Any) -> str | None:
    """``"module:attribute"`` under which worker processes can import the family object, if any."""
    import sys

    module = getattr(type(obj), "__module__", None)
    mod = sys.modules.get(module) if module else None
    if mod is None or module == "__main__":
        return None
    return next((f"{module}:{attr}" for attr, value in vars(mod).items() if value is obj), None)


def resolve_family(family: "str | Family") -> tuple[Family, str | None]:
    """The family object and its importable spec, from a name, a ``"module:attribute"`` or the object."""
    if isinstance(family, str):
        obj = get_family(family)
        return obj, FAMILIES.get(family, family)
    obj = check_family(family, f"family object {family!r}")
    return obj, family_spec(obj)
