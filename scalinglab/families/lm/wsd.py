"""WSD studies: one constant-LR trunk per model, cooldowns branched from its checkpoints.

``wsd_isoflop_design(configs)`` turns the runs of an IsoFLOP or grid design
(one cosine run per size x budget) into, per size and seed, one *trunk* that
trains at the peak LR up to the last branch point and saves a checkpoint at
each, and one *branch* per budget that loads its checkpoint and trains only
the cooldown (the last ``cooldown`` share of that budget's steps, Hägele et
al. 2024). A branch trains exactly the steps the matching one-piece WSD run
would, so it ends where that run ends; the study pays for the longest trunk
once plus the cooldowns.

``run_wsd_sweep`` runs the trunks, then the branches, into one study, with
checkpoints in ``<db>.ckpt/`` (:mod:`scalinglab.families.lm.checkpoint`).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass

from scalinglab.errors import ConfigError
from scalinglab.families.lm.checkpoint import CHECKPOINT_ENV, checkpoint_root_for
from scalinglab.families.lm.train import FAMILY, LMRunConfig
from scalinglab.store import run_key


@dataclass(frozen=True)
class WSDDesign:
    trunks: list[dict]  # constant-LR runs saving checkpoints at their branches' steps
    branches: list[dict]  # cooldowns, one per input config, each naming its trunk's key

    @property
    def configs(self) -> list[dict]:
        return self.trunks + self.branches


def wsd_isoflop_design(configs: list[dict], *, cooldown: float = 0.2, shape: str = "1-sqrt") -> WSDDesign:
    """Trunks and branched cooldowns replacing the per-budget runs ``configs``.

    Runs that differ only in ``tokens`` share a trunk. Each branch has the
    input run's token budget (so the same number of steps) and cools down
    over its last ``round(cooldown x steps)`` steps (at least 1). All runs of a
    trunk warm up for the shortest run's warmup steps.
    """
    if not 0 < cooldown < 1:
        raise ConfigError(f"cooldown = {cooldown!r} is invalid: must be a share of steps in (0, 1)")
    groups: dict[str, list[tuple[dict, LMRunConfig]]] = {}
    for c in configs:
        cfg = LMRunConfig.from_dict(c)
        if cfg.schedule != "cosine" or cfg.parent is not None or cfg.checkpoint_steps:
            raise ConfigError("wsd_isoflop_design takes plain per-budget runs (schedule 'cosine'), not WSD runs")
        shared = {k: v for k, v in c.items() if k != "tokens"}
        groups.setdefault(json.dumps(shared, sort_keys=True), []).append((c, cfg))
    trunks, branches = [], []
    for shared_json, members in groups.items():
        shared = json.loads(shared_json)
        branch_steps = [cfg.steps - max(1, round(cooldown * cfg.steps)) for _, cfg in members]
        if min(branch_steps) < 1:
            raise ConfigError(f"a run of {min(cfg.steps for _, cfg in members)} steps is too short to branch; "
                              "raise its token budget")
        warm = min(min(cfg.warmup_count for _, cfg in members), min(branch_steps))
        seq = members[0][1].batch_size * members[0][1].context
        common = {**shared, "schedule": "wsd", "warmup_steps": warm}
        trunk = {**common, "tokens": float(max(branch_steps) * seq), "cooldown": 0.0,
                 "checkpoint_steps": sorted(set(branch_steps))}
        key = run_key(FAMILY.name, trunk)
        trunks.append(trunk)
        for (c, _), step in zip(members, branch_steps):
            branches.append({**common, "tokens": c["tokens"], "cooldown_shape": shape, "parent": key,
                             "branch_step": step})
    for c in trunks + branches:
        LMRunConfig.from_dict(c)  # every generated run is valid before any trains
    return WSDDesign(trunks=trunks, branches=branches)


@contextmanager
def checkpoints_beside(db) -> "os.PathLike":
    """Set the checkpoint folder to ``<db>.ckpt`` for this process and the workers it starts."""
    before = os.environ.get(CHECKPOINT_ENV)
    root = checkpoint_root_for(db)
    os.environ[CHECKPOINT_ENV] = str(root)
    try:
        yield root
    finally:
        if before is None:
            os.environ.pop(CHECKPOINT_ENV, None)
        else:
            os.environ[CHECKPOINT_ENV] = before


def run_wsd_sweep(store, study: str, design: WSDDesign, **sweep_options):
    """Train the trunks, then the branches, into ``study``; returns the two SweepSummary objects.

    Trunks first, because a branch starts from a trunk checkpoint; a killed
    sweep re-run resumes each unfinished trunk from its last checkpoint.
    ``sweep_options`` go to :func:`scalinglab.sweep.engine.run_sweep`.
    """
    from scalinglab.sweep.engine import run_sweep

    with checkpoints_beside(store.path):
        trunks = run_sweep(store, study, FAMILY.name, design.trunks, **sweep_options)
        branches = run_sweep(store, study, FAMILY.name, design.branches, **sweep_options)
    return trunks, branches
