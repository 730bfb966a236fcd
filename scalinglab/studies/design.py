"""What a study trains: run configs plus the keys that say how to read them.

A design is family-agnostic: a list of flat run configs (what the sweep
engine stores), which config keys are variants to compare (MNIST: dropout),
which are tuned per setting (MNIST: lr), the seed key and the defaults of keys
a config may omit. A design may come in ordered *phases* (lists of configs):
the sweep finishes each phase before it starts the next, all into one study,
for runs that start from what earlier runs saved (a WSD study's cooldowns
branch from its trunks' checkpoints). Families give their own designs (MNIST grids, LM IsoFLOP
presets); a user's family gets one from a TOML file (``read_design_file``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalinglab.errors import ConfigError

FILE_KEYS = {"study", "grid", "fixed", "seeds", "variants", "tuned", "runs"}


@dataclass(kw_only=True)
class Design:
    configs: list[dict]
    variant_keys: tuple[str, ...] = ()
    tuned_keys: tuple[str, ...] = ()
    seed_key: str = "seed"
    defaults: dict = field(default_factory=dict)
    description: dict = field(default_factory=dict)  # the grid or preset as the user gave it
    phases: list[list[dict]] = field(default_factory=list)  # ordered parts of configs; empty: one phase
    compare_variants: bool = True  # False: the variants are different tasks, analysed apart but never jointly

    def __post_init__(self):
        if self.phases:
            if any(not p for p in self.phases):
                raise ConfigError("design: every phase needs at least one run")
            joined = [c for p in self.phases for c in p]
            if not self.configs:
                self.configs = joined
            elif sorted(map(_canonical, self.configs)) != sorted(map(_canonical, joined)):
                raise ConfigError("design: the phases must hold exactly the design's configs")
        if not self.configs:
            raise ConfigError("the design has no runs: give at least one value per grid key and one seed")
        keys = set().union(*self.configs) | set(self.defaults)
        for k in (*self.variant_keys, *self.tuned_keys):
            if k not in keys:
                raise ConfigError(f"design: {k!r} is named as a variant or tuned key but no run config has it; "
                                  f"config keys: {', '.join(sorted(keys))}")

    def digest(self) -> str:
        """8 hex digits of the configs' hash: a changed grid is a new study, never mixed with the old one."""
        text = json.dumps(sorted(json.dumps(c, sort_keys=True) for c in self.configs))
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def sweep_phases(self) -> list[list[dict]]:
        """The configs in the order the sweep runs them: each phase finishes before the next starts."""
        return [list(p) for p in self.phases] or [list(self.configs)]

    def info(self) -> dict:
        """What the study records about its design (read back by ``load_study``)."""
        design = {"variant_keys": list(self.variant_keys), "tuned_keys": list(self.tuned_keys),
                  "seed_key": self.seed_key, "defaults": self.defaults}
        if self.phases:
            design["phases"] = [len(p) for p in self.phases]
        if not self.compare_variants:
            design["compare_variants"] = False
        return {"design": design, "grid": self.description}


def _canonical(config: dict) -> str:
    return json.dumps(config, sort_keys=True)


def family_design(family: Any, configs: list[dict], *, description: dict | None = None,
                  phases: list[list[dict]] | None = None, **keys) -> Design:
    """A design whose variant, tuned and seed keys and defaults come from the family's declarations.

    ``phases``: the configs in ordered parts (``configs`` may then be empty), see :class:`Design`.
    """
    defaults = family.config_defaults() if hasattr(family, "config_defaults") else {}
    configs = list(configs) or [c for p in (phases or []) for c in p]
    present = set().union(*configs) | set(defaults)

    def declared(kind: str) -> tuple[str, ...]:
        """Keys given explicitly are checked by Design; the family's own declarations apply where present."""
        if kind in keys:
            return tuple(keys[kind])
        return tuple(k for k in getattr(family, kind, ()) if k in present)

    return Design(configs=configs, variant_keys=declared("variant_keys"), tuned_keys=declared("tuned_keys"),
                  seed_key=keys.get("seed_key", getattr(family, "seed_key", "seed")),
                  defaults=dict(defaults), description=description or {}, phases=[list(p) for p in phases or []])


def grid_configs(grid: dict[str, list], *, fixed: dict | None = None, seeds=(0,), seed_key: str = "seed") -> list[dict]:
    """Every combination of the grid's values (in the grid's order) for every seed, merged with ``fixed``."""
    for k, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid key {k!r} must be a non-empty list of values, got {values!r}")
        if len(set(map(json.dumps, values))) != len(values):
            raise ConfigError(f"grid key {k!r} lists a value twice: {values}")
    overlap = set(grid) & set(fixed or {})
    if overlap:
        raise ConfigError(f"{sorted(overlap)[0]!r} is both a grid key and a fixed setting; keep one")
    configs = []
    for combo in itertools.product(*grid.values()):
        for seed in seeds:
            configs.append({**(fixed or {}), **dict(zip(grid, combo)), seed_key: seed})
    return configs


def read_toml(path: str | Path, what: str) -> dict:
    """A TOML file's tables, or a one-line ConfigError naming ``what`` the file is."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigError(f"{what} {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None


def read_design_file(path: str | Path, family: Any) -> tuple[Design, str | None]:
    """A design (and the study name, if the file gives one) from a TOML file.

    ::

        [study]
        name = "my-mlp"            # optional; default: family name + the design's hash
        seeds = [0, 1]
        variants = ["dropout"]     # compared as variants (optional)
        tuned = ["lr"]             # best per setting kept (optional)

        [grid]                     # every combination of these
        hidden = [16, 32, 64]
        examples = [250, 500, 1000]

        [fixed]                    # shared by every run
        lr = 0.01

    ``[[runs]]`` tables list explicit configs instead of (or beside) a grid.
    """
    path = Path(path)
    doc = read_toml(path, "design file")
    unknown = set(doc) - FILE_KEYS
    if unknown:
        raise ConfigError(f"design file {path}: unknown section {sorted(unknown)[0]!r}; "
                          f"known: {', '.join(sorted(FILE_KEYS))}")
    study = doc.get("study", {})
    if not isinstance(study, dict):
        raise ConfigError(f"design file {path}: [study] must be a table")
    extra = set(study) - {"name", "seeds", "variants", "tuned", "seed_key"}
    if extra:
        raise ConfigError(f"design file {path}: unknown [study] key {sorted(extra)[0]!r}; "
                          "known: name, seeds, variants, tuned, seed_key")
    grid, runs = doc.get("grid", {}), doc.get("runs", [])
    if not grid and not runs:
        raise ConfigError(f"design file {path} has no [grid] table and no [[runs]]: nothing to train")
    seed_key = study.get("seed_key", getattr(family, "seed_key", "seed"))
    seeds = study.get("seeds", doc.get("seeds", [0]))
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                            and 0 <= s < 2 ** 63 for s in seeds):
        raise ConfigError(f"design file {path}: seeds must be a non-empty list of integers in [0, 2^63)")
    fixed = doc.get("fixed", {})
    configs = grid_configs(grid, fixed=fixed, seeds=seeds, seed_key=seed_key) if grid else []
    for i, r in enumerate(runs):
        if not isinstance(r, dict):
            raise ConfigError(f"design file {path}: [[runs]] entry {i + 1} is not a table")
        configs.extend({**fixed, **r, seed_key: s} if seed_key not in r else {**fixed, **r} for s in seeds)
    keys = {k: tuple(study[f]) for k, f in (("variant_keys", "variants"), ("tuned_keys", "tuned")) if f in study}
    design = family_design(family, configs, description={k: v for k, v in doc.items() if k != "study"},
                           seed_key=seed_key, **keys)
    name = study.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigError(f"design file {path}: [study] name must be a non-empty string")
    return design, name
