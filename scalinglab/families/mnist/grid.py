"""Sweep grids for the MNIST study: widths x fractions x seeds x dropout x LR.

A grid is a small validated dataclass; it comes from CLI flags, a TOML file
or a named preset, and expands into the flat run configs the engine stores.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from fractions import Fraction
from pathlib import Path

from scalinglab.errors import ConfigError
from scalinglab.families.mnist.model import width_ladder
from scalinglab.families.mnist.train import DEFAULT_LR, MnistRunConfig
from scalinglab.provenance import resolve_precision

LR_TUNE_FACTORS = (1 / 3, 1.0, 3.0)  # --lr tune: these multiples of the default base LR


@dataclass(kw_only=True)
class MnistGrid:
    widths: list[int]
    fractions: list[float]
    seeds: list[int] = field(default_factory=lambda: [0])
    dropouts: list[float] = field(default_factory=lambda: [0.0])
    lrs: list[float] = field(default_factory=lambda: [DEFAULT_LR])  # several: tuned per width
    batch_size: int = 128
    precision: str = "auto"  # bf16 where the CPU has it natively, else fp32 (provenance.default_precision)
    train_limit: int | None = None
    data: str | None = None
    device: str = "cpu"

    def __post_init__(self):
        for name in ("widths", "fractions", "seeds", "dropouts", "lrs"):
            values = getattr(self, name)
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{name} is empty: the sweep grid needs at least one value")
            if len(set(values)) != len(values):
                raise ConfigError(f"{name} lists a value twice: {values}")
        for c in self.configs():  # every run config validates its own fields
            MnistRunConfig.from_dict(c)

    @property
    def lr_tuned(self) -> bool:
        return len(self.lrs) > 1

    def configs(self) -> list[dict]:
        """One flat config per run, in grid order."""
        out, precision = [], resolve_precision(self.precision, self.device)
        for w in self.widths:
            for f in self.fractions:
                for d in self.dropouts:
                    for lr in self.lrs:
                        for s in self.seeds:
                            c = dict(width=w, fraction=f, seed=s, dropout=d, lr=lr,
                                     batch_size=self.batch_size, precision=precision)
                            if self.train_limit is not None:
                                c["train_limit"] = self.train_limit
                            if self.data is not None:
                                c["data"] = self.data
                            if self.device != "cpu":  # CPU runs keep the keys they always had
                                c["device"] = self.device
                            out.append(c)
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, origin: str = "grid") -> "MnistGrid":
        known = {f.name for f in fields(cls)}
        for key in d:
            if key not in known:
                raise ConfigError(f"{origin}: unknown setting {key!r}; known: {', '.join(sorted(known))}")
        for f in fields(cls):
            if f.name not in d and f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"{origin}: {f.name} is missing: the sweep grid needs at least one value")
        d = dict(d)
        for key in ("widths", "seeds"):
            if key in d:
                d[key] = [_as_int(v, key) for v in _as_list(d[key], key)]
        for key in ("fractions", "dropouts", "lrs"):
            if key in d:
                d[key] = [parse_number(v, key) for v in _as_list(d[key], key)]
        return cls(**d)



def read_grid_file(path: str | Path) -> dict:
    """The settings of a TOML grid file, unvalidated (merge, then ``MnistGrid.from_dict``)."""
    from scalinglab.studies.design import read_toml

    settings = read_toml(path, "grid file")
    if not settings:
        raise ConfigError(f"grid file {path} is empty; give at least widths and fractions "
                          "(e.g. widths = [4, 8]  fractions = [1, 0.5])")
    return settings


def _as_list(v, name: str) -> list:
    if isinstance(v, (list, tuple)):
        return list(v)
    if isinstance(v, str):
        return [x for x in (p.strip() for p in v.split(",")) if x]
    return [v]


def _as_int(v, name: str) -> int:
    if isinstance(v, bool):
        raise ConfigError(f"{name}: {v!r} is not an integer")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {v!r} is not an integer") from None
    if not f.is_integer():
        raise ConfigError(f"{name}: {v!r} is not an integer")
    return int(f)


def parse_number(v, name: str) -> float:
    """A float from a number or a string such as ``"1/16"`` or ``"0.2"``."""
    if isinstance(v, bool):
        raise ConfigError(f"{name}: {v!r} is not a number")
    try:
        x = float(Fraction(v.strip())) if isinstance(v, str) else float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ConfigError(f"{name}: {v!r} is not a number (write e.g. 0.25 or 1/4)") from None
    if not math.isfinite(x):
        raise ConfigError(f"{name}: {v!r} is not a finite number")
    return x


def halvings(n: int) -> list[float]:
    """[1, 1/2, ..., 1/2^(n-1)]."""
    return [1 / 2 ** k for k in range(n)]


PRESETS: dict[str, MnistGrid] = {
    # a handful of runs on a 4,000-image slice: tests and demos, well under a minute
    "smoke": MnistGrid(widths=[4, 8], fractions=[1.0, 0.5, 0.25], seeds=[0], train_limit=4000),
    # the exercise's whole ladder, one seed fewer and no dropout repeat
    "quick": MnistGrid(widths=width_ladder(), fractions=halvings(7), seeds=[0, 1]),
    # the whole exercise: 9 widths x 7 fractions x 3 seeds x {0, 0.2} dropout = 378 runs
    "full": MnistGrid(widths=width_ladder(), fractions=halvings(7), seeds=[0, 1, 2], dropouts=[0.0, 0.2]),
}


def preset(name: str) -> MnistGrid:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def tune_lrs(base: float = DEFAULT_LR) -> list[float]:
    return [round(base * f, 6) for f in LR_TUNE_FACTORS]


def mnist_design(grid: MnistGrid):
    """The grid as a study design: dropout rates are variants, several LRs are tuned per setting."""
    from scalinglab.families.mnist.train import FAMILY
    from scalinglab.studies.design import family_design

    return family_design(FAMILY, grid.configs(), description=grid.to_dict())
