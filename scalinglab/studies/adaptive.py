"""Adaptive studies: a small seed design, then rounds of plan -> sweep -> fit until the answer is tight enough.

``run_adaptive_study(family, seed_design, candidates, db=..., name=..., question="a", target_flops=C*,
budget_flops=B)`` sweeps the seed design, fits the law to the study's runs,
and while the interval of the answer is wider than ``target_width`` and
FLOPs are left, asks :func:`scalinglab.studies.plan.plan_runs` for the next
``runs_per_round`` runs and sweeps them. ``budget_flops`` counts every run of
the study, the seed design included, so an adaptive study and a fixed grid
compare at equal FLOPs.

Every round is recorded in the study's info under ``"adaptive"`` before its
runs start (``status: "planned"``) and again when its fit is done
(``"done"``, with the interval after it), so a killed study resumes where it
stopped: a planned round's runs are swept (finished ones skipped), never
replanned; a plan depends only on the runs so far, so the rounds of a resumed
study are the rounds of an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from scalinglab.errors import ConfigError
from scalinglab.studies.design import Design
from scalinglab.studies.plan import (
    DEFAULT_SEEDS,
    answer_key,
    check_question,
    current_fit,
    family_candidates,
    interval_width,
    plan_from_fit,
)

INFO_KEY = "adaptive"


@dataclass
class AdaptiveStudy:
    """What an adaptive study did: its rounds as recorded, why it stopped, the final fit."""

    name: str
    db: str
    rounds: list[dict]
    stopped: str
    fit: Any = None                       # FitResult of the last round
    design: Design | None = None          # the seed design and every round's runs
    settings: dict = field(default_factory=dict)

    @property
    def spent_flops(self) -> float:
        return float(self.rounds[-1]["spent_flops"]) if self.rounds else 0.0

    def table(self) -> pd.DataFrame:
        """One row per round: runs, FLOPs of the round and so far, the interval after it."""
        return pd.DataFrame([{"round": r["round"], "runs": len(r["runs"]), "flops": r["flops"],
                              "spent_flops": r["spent_flops"], "estimate": r.get("estimate"), "lo": r.get("lo"),
                              "hi": r.get("hi"), "width": r.get("width"), "expected_width": r.get("expected_width"),
                              "why": r["why"]} for r in self.rounds])

    def describe(self) -> str:
        s = self.settings
        lines = [f"adaptive study {self.name} in {self.db}: {s['question']} ({answer_key(s['question'], s['target_flops'])}),"
                 f" {len(self.rounds)} round(s), {self.spent_flops:.3g} of {s['budget_flops']:.3g} FLOPs",
                 self.table().drop(columns="why").to_string(index=False, float_format=lambda v: f"{v:.4g}"),
                 f"stopped: {self.stopped}"]
        return "\n".join(lines)


def study_frame(db: str | Path, name: str) -> pd.DataFrame:
    """The study's complete runs as the planner reads them: N, D, loss and seed, one row per run."""
    from scalinglab.studies.load import load_study

    study = load_study(db, name)
    done = study.point_runs[study.point_runs["status"] == "complete"]
    seed_key = study.design.get("seed_key", "seed")
    frame = pd.DataFrame({"N": done["params"].astype(float), "D": done["examples"].astype(float),
                          "loss": done["val_loss"].astype(float)})
    if seed_key in done:
        frame["seed"] = done[seed_key].to_numpy()
    return frame.reset_index(drop=True)


def _design(seed: Design, configs: list[dict]) -> Design:
    return Design(configs=configs, variant_keys=seed.variant_keys, tuned_keys=seed.tuned_keys,
                  seed_key=seed.seed_key, defaults=dict(seed.defaults),
                  description={**seed.description, "adaptive": True})


def run_adaptive_study(family, seed_design: Design, candidates: pd.DataFrame, *, db: str | Path = "runs.db",
                       name: str, question: str = "a", target_flops: float, budget_flops: float,
                       target_width: float | None = None, runs_per_round: int = 4, max_rounds: int = 20,
                       law: str = "chinchilla", n_resamples: int = 200, seeds=DEFAULT_SEEDS,
                       fit_options: dict | None = None, workers: int = 2, executor: str = "local",
                       address: str | None = None, progress: bool = True,
                       on_round: Callable[[dict], None] | None = None) -> AdaptiveStudy:
    """Seed design, then plan -> sweep -> fit rounds (module docstring); resumes a killed study of ``name``.

    ``candidates``: the runs the family can do (:func:`scalinglab.studies.plan.family_candidates`: N, D,
    cost_flops, config without the seed). Returns the rounds as recorded in the study's info.
    """
    from scalinglab.studies.pipeline import sweep_study
    from scalinglab.sweep.family import resolve_family

    check_question(question, target_flops, budget_flops)
    if runs_per_round < 1 or max_rounds < 0:
        raise ConfigError("runs_per_round must be 1 or more and max_rounds 0 or more")
    if "config" not in candidates:
        raise ConfigError("adaptive candidates need a config column (use family_candidates)")
    fam, _ = resolve_family(family)
    seed_cost = sum(float(fam.cost(c)) for c in seed_design.configs)
    if seed_cost > budget_flops:
        raise ConfigError(f"the seed design alone costs {seed_cost:.3g} FLOPs, more than the budget of "
                          f"{budget_flops:.3g}; raise --budget-flops or start from a smaller seed design")
    settings = {"question": question, "target_flops": float(target_flops), "budget_flops": float(budget_flops),
                "target_width": target_width, "runs_per_round": runs_per_round, "max_rounds": max_rounds,
                "law": law, "n_resamples": n_resamples, "seeds": list(seeds), "seed_digest": seed_design.digest()}
    rounds = _recorded_rounds(db, name, settings)
    if not rounds:
        rounds = [{"round": 0, "status": "planned", "why": "seed design", "runs": list(seed_design.configs)}]
    stopped = ""
    fit = None
    while True:
        last = rounds[-1]
        configs = [c for r in rounds for c in r["runs"]]
        if last["status"] == "planned":
            _record(db, name, settings, rounds, stopped="", family=family, design=_design(seed_design, configs))
            _, summary = sweep_study(family, _design(seed_design, configs), db=db, name=name, workers=workers,
                                     executor=executor, address=address, progress=progress)
            if summary.failed:
                raise ConfigError(f"{summary.failed} run(s) of round {last['round']} failed; re-run the same "
                                  "command to retry them (the study resumes this round)")
        frame = study_frame(db, name)
        fit = current_fit(frame, question=question, law=law, target_flops=target_flops, n_resamples=n_resamples,
                          fit_options=fit_options)
        key = answer_key(question, target_flops)
        iv = fit.intervals[key]
        width = interval_width(question, iv.lo, iv.hi)
        spent = sum(float(fam.cost(c)) for c in configs)
        if last["status"] == "planned":
            last.update(status="done", estimate=fit.value(key), lo=iv.lo, hi=iv.hi, width=width,
                        flops=sum(float(fam.cost(c)) for c in last["runs"]), spent_flops=spent)
            _record(db, name, settings, rounds, stopped="")
            if on_round is not None:
                on_round(last)
        if target_width is not None and width <= target_width:
            stopped = f"interval width {width:.3g} reached the target {target_width:.3g}"
        elif len(rounds) - 1 >= max_rounds:
            stopped = f"{max_rounds} round(s) done"
        elif budget_flops - spent < candidates["cost_flops"].min():
            stopped = f"budget spent: {spent:.3g} of {budget_flops:.3g} FLOPs (no candidate fits in the rest)"
        if stopped:
            break
        plan = plan_from_fit(fit, frame, question=question, target_flops=target_flops,
                             budget_flops=budget_flops - spent, candidates=candidates, seeds=seeds,
                             max_runs=runs_per_round)
        if not len(plan.table):
            stopped = "; ".join(plan.notes) or "the planner proposed no run"
            break
        rounds.append({"round": len(rounds), "status": "planned", "runs": plan.configs(),
                       "why": [str(r) for r in plan.table["reason"]], "expected_width": plan.expected_width,
                       "width_before": width})
    _record(db, name, settings, rounds, stopped=stopped)
    return AdaptiveStudy(name=name, db=str(db), rounds=rounds, stopped=stopped, fit=fit, settings=settings,
                         design=_design(seed_design, [c for r in rounds for c in r["runs"]]))


def _recorded_rounds(db, name: str, settings: dict) -> list[dict]:
    """The rounds a killed study recorded; a study of that name with other settings is refused."""
    from scalinglab.store import RunStore

    with RunStore(db) as store:                   # the study is about to be written: create the store if new
        if name not in set(store.studies()["name"]):
            return []
        info = store.study_info(name).get(INFO_KEY)
    if info is None:
        raise ConfigError(f"study {name!r} in {db} is not an adaptive study; give another --name")
    if info["settings"] != settings:
        diff = sorted(k for k in settings if info["settings"].get(k) != settings[k])
        raise ConfigError(f"adaptive study {name!r} in {db} was started with other settings ({', '.join(diff)}); "
                          "give the same ones to resume it, or another --name")
    return info["rounds"]


def _record(db, name: str, settings: dict, rounds: list[dict], *, stopped: str, family=None,
            design: Design | None = None) -> None:
    """Write the rounds into the study's info; with ``design``, first register its runs (pending) and
    its digest, so the round is on disk before any of its runs starts and the sweep accepts the grown design."""
    from scalinglab.store import RunStore
    from scalinglab.sweep.family import resolve_family

    with RunStore(db) as store:
        extra = {}
        if design is not None:
            fam, spec = resolve_family(family)
            store.add_study(name, fam.name, design.configs, [fam.cost(c) for c in design.configs],
                            {"family_spec": spec})
            extra = {**design.info(), "design_digest": design.digest()}
        store.update_study_info(name, **{INFO_KEY: {"settings": settings, "rounds": rounds, "stopped": stopped}},
                                **extra)


# ------------------------------------------------------------------- any family

def design_candidates(family, design: Design) -> pd.DataFrame:
    """The runs an adaptive study may choose from: the design's settings (seeds left out), with N and D from
    the family's ``size(config)`` and FLOPs from its ``cost``."""
    if not callable(getattr(family, "size", None)):
        raise ConfigError(f"family {family.name!r} has no size(config) -> (N, D) method; an adaptive study needs "
                          "each run's parameters and examples before training it (see docs/your-model.md)")
    settings, seen = [], set()
    for c in design.configs:
        config = {k: v for k, v in c.items() if k != design.seed_key}
        key = repr(sorted(config.items()))
        if key not in seen:
            seen.add(key)
            settings.append(config)
    return family_candidates(family, settings, size=family.size)


def corner_seed_design(design: Design, candidates: pd.DataFrame, seed: int = 0) -> Design:
    """A 3 x 3 seed design: the candidates nearest the smallest, middle and largest N crossed with the same in D,
    one seed each (what the first fit of an adaptive study needs to bracket the surface)."""
    import numpy as np

    ln, ld = np.log(candidates["N"].to_numpy(float)), np.log(candidates["D"].to_numpy(float))
    picks = []
    for qn in (0.0, 0.5, 1.0):
        for qd in (0.0, 0.5, 1.0):
            tn, td = np.quantile(ln, qn), np.quantile(ld, qd)
            picks.append(int(np.argmin((ln - tn) ** 2 + (ld - td) ** 2)))
    configs = [{**candidates["config"].iloc[i], design.seed_key: seed} for i in dict.fromkeys(picks)]
    return _design(design, configs)


# ------------------------------------------------------------------- MNIST

def mnist_candidates(base: dict | None = None) -> pd.DataFrame:
    """The MNIST runs an adaptive study may choose from: the ladder's widths x the halved fractions,
    at the quick preset's settings (``base`` overrides them), with N, D and FLOPs of each."""
    from scalinglab.families.mnist.grid import MnistGrid, mnist_design, preset
    from scalinglab.families.mnist.train import FAMILY

    quick = preset("quick")
    grid = MnistGrid.from_dict({**quick.to_dict(), **(base or {}), "seeds": [0], "dropouts": [0.0]})
    return design_candidates(FAMILY, mnist_design(grid))


def mnist_seed_design(base: dict | None = None) -> Design:
    """A 3 x 3 seed design on the MNIST ladder: widths 4, 11, 32 x fractions 1/64, 1/8, 1, one seed."""
    from scalinglab.families.mnist.grid import MnistGrid, mnist_design, preset

    grid = MnistGrid.from_dict({**preset("quick").to_dict(), **(base or {}), "widths": [4, 11, 32],
                                "fractions": [1 / 64, 1 / 8, 1.0], "seeds": [0], "dropouts": [0.0]})
    return mnist_design(grid)
