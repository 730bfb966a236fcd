"""The language-model scaling study: Kaplan's and Chinchilla's setting at toy scale.

``run_lm_study("quick")`` trains a preset set of transformer runs on
Shakespeare into the run database (family ``"lm"``) and analyses and reports
them through the one study pipeline (:mod:`scalinglab.studies.pipeline`),
like any other family: Approach 1, Approach 2 (IsoFLOP minima, D_opt read
from the tokens the runs trained on: our C is the exact FLOP count, not 6ND),
Approach 3 with its back-test. The LM report adds Kaplan's non-embedding
count, the critical batch size and curve forecasts
(:mod:`scalinglab.families.lm.report`).

Designs. *IsoFLOP*: for each budget C, ``per_budget`` neighbouring sizes of
the size ladder, centred on the one whose run would see
``centre_tokens_per_param`` tokens per parameter, each trained on
D = C / (exact training FLOPs per token), so every run of a budget costs the
same C. *Grid*: every size x every token budget. Either design runs with a
cosine schedule per run, or (``schedule="wsd"``) as cooldowns branched from
one constant-LR trunk per size (Hägele et al. 2024), at about half the compute.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from scalinglab.errors import ConfigError
from scalinglab.families.lm.model import SIZES, flops_per_token, param_counts, size_config
from scalinglab.provenance import default_precision

FAMILY = "lm"
CHINCHILLA_TOKENS_PER_PARAM = 20.0  # Hoffmann et al. 2022: ~20 tokens per parameter at the optimum


@dataclass(kw_only=True, frozen=True)
class LMStudyPreset:
    """What an LM study trains. ``run`` holds settings shared by every run (LMRunConfig fields)."""

    name: str
    sizes: tuple[str, ...]  # the size ladder, smallest first
    budgets: tuple[float, ...] = ()  # IsoFLOP compute budgets C (exact training FLOPs)
    per_budget: int = 5  # sizes trained per budget
    centre_tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM  # each budget's sizes centre on this D/N
    grid_sizes: tuple[str, ...] = ()  # N x D grid design: sizes ...
    grid_tokens: tuple[float, ...] = ()  # ... times token budgets
    seeds: tuple[int, ...] = (0,)
    run: dict = field(default_factory=dict)
    bootstrap: int = 200  # resamples for the intervals
    note: str = ""

    def __post_init__(self):
        unknown = [s for s in (*self.sizes, *self.grid_sizes) if s not in SIZES]
        if unknown:
            raise ConfigError(f"preset {self.name}: unknown size {unknown[0]!r}; known: {', '.join(SIZES)}")
        if not self.budgets and not self.grid_tokens:
            raise ConfigError(f"preset {self.name}: give budgets (IsoFLOP design) or grid_tokens (grid design)")
        if self.budgets and not 3 <= self.per_budget <= len(self.sizes):
            raise ConfigError(f"preset {self.name}: per_budget must be between 3 (a parabola needs 3 sizes) "
                              f"and the number of sizes ({len(self.sizes)}), got {self.per_budget}")
        if any(not (c > 0 and math.isfinite(c)) for c in self.budgets):
            raise ConfigError(f"preset {self.name}: budgets must be positive FLOP counts")
        if bool(self.grid_sizes) != bool(self.grid_tokens):
            raise ConfigError(f"preset {self.name}: a grid needs both grid_sizes and grid_tokens")
        if self.bootstrap < 2:
            raise ConfigError(f"preset {self.name}: bootstrap must be at least 2 resamples")
        from scalinglab.families.lm.train import LMRunConfig

        LMRunConfig.from_dict({"size": self.sizes[0] if self.sizes else self.grid_sizes[0],
                               "tokens": 1, **self.run})  # validates the shared settings

    def to_dict(self) -> dict:
        return asdict(self)


_QUICK_RUN = {"context": 128, "batch_size": 16, "tokenizer": "bpe", "vocab_size": 512}
PRESETS: dict[str, LMStudyPreset] = {
    # Seconds: a CI-sized check that the whole pipeline runs (bytes, tiny context).
    "smoke": LMStudyPreset(
        name="smoke", sizes=("d16-l1", "d24-l1", "d32-l1", "d48-l1"), budgets=(1e9, 3e9), per_budget=3,
        run={"context": 32, "batch_size": 8, "tokenizer": "bytes", "eval_tokens": 2048, "noise_splits": 2},
        bootstrap=20, note="pipeline check only; the numbers mean nothing"),
    # ~13 minutes on 2 idle cores: 4 budgets x 5 sizes. Centred on 40 tokens/parameter: a pilot
    # centred on Chinchilla's 20 put the minimum at the smallest size for 2 of 4 budgets
    # (docs/lm-scaling.md).
    "quick": LMStudyPreset(
        name="quick", sizes=("d16-l1", "d24-l1", "d32-l1", "d48-l1", "d48-l2", "d64-l2", "d80-l2", "d96-l2",
                             "d96-l3", "d128-l3", "d128-l4"),
        budgets=(3e11, 1e12, 3e12, 1e13), per_budget=5, centre_tokens_per_param=40.0, run=_QUICK_RUN,
        bootstrap=200),
    # Hours: 5 budgets x 7 sizes, two seeds, and a 4 x 4 N x D grid.
    "full": LMStudyPreset(
        name="full", sizes=("d16-l1", "d24-l1", "d32-l1", "d48-l1", "d48-l2", "d64-l2", "d80-l2", "d96-l2",
                            "d96-l3", "d128-l3", "d128-l4", "d160-l4", "d192-l4", "d256-l4", "d256-l6"),
        budgets=(3e11, 1e12, 3e12, 1e13, 3e13), per_budget=7, centre_tokens_per_param=40.0, seeds=(0, 1),
        grid_sizes=("d32-l1", "d64-l2", "d96-l3", "d128-l4"), grid_tokens=(2.5e5, 1e6, 4e6, 1.6e7),
        run=_QUICK_RUN, bootstrap=500),
}


def get_preset(name: str, overrides: dict | None = None) -> LMStudyPreset:
    if name not in PRESETS:
        raise ConfigError(f"unknown LM study preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    run = {"precision": default_precision(), **preset.run, **(overrides or {})}
    return replace(preset, run=run)


# ---------------------------------------------------------------------------
# Designs
# ---------------------------------------------------------------------------

def _size_facts(size: str, run: dict) -> tuple[int, int, int]:
    """(total params, non-embedding params, exact training FLOPs per token) of a size under ``run``."""
    vocab = 256 if run.get("tokenizer", "bpe") == "bytes" else run.get("vocab_size", 512)
    cfg = size_config(size, vocab_size=vocab, context=run.get("context", 128))
    counts = param_counts(cfg)
    return counts["total"], counts["non_embedding"], flops_per_token(cfg)["train"]


def isoflop_sizes(preset: LMStudyPreset, budget: float) -> list[str]:
    """The ``per_budget`` ladder sizes around the one whose run at ``budget`` would see
    ``centre_tokens_per_param`` tokens per parameter."""
    ratio = []
    for s in preset.sizes:
        n, _, fpt = _size_facts(s, preset.run)
        ratio.append(abs(math.log((budget / fpt) / n / preset.centre_tokens_per_param)))
    centre = int(np.argmin(ratio))
    lo = min(max(0, centre - preset.per_budget // 2), len(preset.sizes) - preset.per_budget)
    return list(preset.sizes[lo:lo + preset.per_budget])


def design(preset: LMStudyPreset) -> list[dict]:
    """Run configs of the preset: IsoFLOP runs (D = C / FLOPs per token) then grid runs."""
    configs, seen = [], set()
    for seed in preset.seeds:
        for budget in preset.budgets:
            for size in isoflop_sizes(preset, budget):
                _, _, fpt = _size_facts(size, preset.run)
                configs.append({**preset.run, "size": size, "tokens": float(f"{budget / fpt:.6g}"), "seed": seed})
        for size in preset.grid_sizes:
            for tokens in preset.grid_tokens:
                configs.append({**preset.run, "size": size, "tokens": float(tokens), "seed": seed})
    unique = []
    for c in configs:
        key = json.dumps(c, sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(c)
    return unique


def study_name(preset: LMStudyPreset) -> str:
    import hashlib

    digest = hashlib.sha256(json.dumps(design(preset), sort_keys=True).encode()).hexdigest()
    return f"lm-{preset.name}-{digest[:8]}"


# ---------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------

SCHEDULES = ("cosine", "wsd")


def lm_study_design(preset: str = "quick", overrides: dict | None = None, *, schedule: str = "cosine",
                    cooldown: float = 0.2, cooldown_shape: str = "1-sqrt"):
    """(study name, design) of a preset: the name carries the design's hash, so a changed preset is a new study.

    ``schedule="wsd"``: the same runs as WSD cooldowns branched from one
    constant-LR trunk per size and seed (:func:`scalinglab.families.lm.wsd.wsd_isoflop_design`),
    in two phases, trunks first; each branch cools down over its last
    ``cooldown`` share of steps with ``cooldown_shape``.
    """
    from scalinglab.families.lm.train import FAMILY as LM
    from scalinglab.studies.design import family_design

    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule = {schedule!r} is invalid: must be one of {', '.join(SCHEDULES)}")
    pre = get_preset(preset, overrides)
    from scalinglab.data.text import text_files

    text_files(pre.run.get("corpus", "shakespeare"))  # a bad --corpus fails here, not in every run
    kind = "isoflop+grid" if pre.grid_tokens and pre.budgets else ("grid" if pre.grid_tokens else "isoflop")
    description = {"preset": pre.to_dict(), "design": kind}
    if schedule == "cosine":
        return study_name(pre), family_design(LM, design(pre), description=description)
    from scalinglab.families.lm.wsd import wsd_isoflop_design

    wsd = wsd_isoflop_design(design(pre), cooldown=cooldown, shape=cooldown_shape)
    description.update(schedule="wsd", cooldown=cooldown, cooldown_shape=cooldown_shape, trunks=len(wsd.trunks),
                       branches=len(wsd.branches))
    d = family_design(LM, [], phases=[wsd.trunks, wsd.branches], description=description)
    return f"lm-{pre.name}-wsd-{d.digest()}", d


def run_lm_study(preset: str = "quick", *, overrides: dict | None = None, out: str | Path | None = None,
                 schedule: str = "cosine", cooldown: float = 0.2, cooldown_shape: str = "1-sqrt", **options):
    """Sweep (resuming), analyse and report a preset; ``options`` as :func:`~scalinglab.studies.pipeline.run_study`."""
    from scalinglab.studies.pipeline import run_study

    name, design_ = lm_study_design(preset, overrides, schedule=schedule, cooldown=cooldown,
                                    cooldown_shape=cooldown_shape)
    bootstrap = get_preset(preset).bootstrap
    default_out = f"study-lm-{preset}" + ("-wsd" if schedule == "wsd" else "")
    return run_study(FAMILY, design_, name=name, out=out or default_out, **{"n_resamples": bootstrap, **options})
