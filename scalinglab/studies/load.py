"""Reading one study back from a run database: its runs, its design and its points.

A family may define ``point_runs(runs) -> runs``: the runs a study's scaling
points are made of, in the form the points need. The LM family's drops WSD
trunks and fine-tunes and gives a branched cooldown the compute of the
one-piece run it stands for. ``LoadedStudy.runs`` stays every run as stored
(what the study cost); ``point_runs`` and ``points`` are what the fits read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from scalinglab.errors import ConfigError
from scalinglab.studies.points import study_points


@dataclass
class LoadedStudy:
    """A study as stored: name, family, info (design, machine, timings), runs and seed-mean points."""

    name: str
    family: str  # the family's declared name, as stored with every run
    info: dict
    runs: pd.DataFrame  # every run of the study, config defaults filled in
    points: pd.DataFrame  # seed means of the complete runs (see study_points)
    design: dict = field(default_factory=dict)  # variant_keys, tuned_keys, seed_key
    setting_keys: tuple[str, ...] = ()  # config keys that define a setting (all but seed and tuned keys)
    point_runs: pd.DataFrame | None = None  # the runs behind the points (the family's point_runs); None: runs

    def __post_init__(self):
        if self.point_runs is None:
            self.point_runs = self.runs

    @property
    def cost(self) -> dict[str, float]:
        """FLOPs the finished runs spent, and what the points' runs would have cost trained one by one."""
        done = lambda r: r[r["status"].isin(("complete", "diverged"))]  # noqa: E731
        return {"flops_spent": float(done(self.runs)["flops"].fillna(0).sum()),
                "flops_equivalent": float(done(self.point_runs)["flops"].fillna(0).sum())}

    @property
    def variant_keys(self) -> tuple[str, ...]:
        return tuple(k for k in self.design.get("variant_keys", ()) if k in self.points)

    @property
    def family_spec(self) -> str | None:
        """``"module:attribute"`` of the family object, where the study recorded it."""
        return self.info.get("family_spec")


def list_studies(db: str | Path) -> pd.DataFrame:
    """Every study in ``db``: name, family, created, and its run counts by status."""
    from scalinglab.store import RunStore

    if not Path(db).exists():
        raise ConfigError(f"database {db} does not exist; run a study first or check --db")
    with RunStore(db, readonly=True) as store:
        studies = store.studies()
        counts = [store.status_counts(name) for name in studies["name"]]
    studies = studies.drop(columns=["info"])
    studies["created"] = pd.to_datetime(studies["created"], unit="s").dt.strftime("%Y-%m-%d %H:%M")
    studies["runs"] = [sum(c.values()) for c in counts]
    studies["complete"] = [c.get("complete", 0) for c in counts]
    return studies


def resolve_study(db: str | Path, study: str | None = None, family: str | None = None) -> tuple[str, str]:
    """(name, family) of the study to read; with several studies and no ``study``, a clear error."""
    from scalinglab.store import RunStore

    if not Path(db).exists():
        raise ConfigError(f"database {db} does not exist; run a study first or check --db")
    with RunStore(db, readonly=True) as store:
        studies = store.studies()
    if family is not None:
        studies = studies[studies["family"] == family]
    if studies.empty:
        where = f" of family {family!r}" if family else ""
        raise ConfigError(f"{db} holds no studies{where}; run `scalinglab study ... --db {db}` first")
    if study is None:
        if len(studies) > 1:
            raise ConfigError(f"{db} holds {len(studies)} studies; choose one with --study NAME: "
                              + ", ".join(f"{n} ({f})" for n, f in zip(studies["name"], studies["family"])))
        row = studies.iloc[0]
    else:
        match = studies[studies["name"] == study]
        if match.empty:
            raise ConfigError(f"no study named {study!r} in {db}; studies: {', '.join(studies['name'])}")
        row = match.iloc[0]
    return str(row["name"]), str(row["family"])


def study_family(family_name: str, info: dict) -> Any:
    """The study's family object (its recorded spec, else the registered name), or None if not importable."""
    try:
        from scalinglab.sweep.family import get_family

        return get_family(info.get("family_spec") or family_name)
    except (ConfigError, ImportError, AttributeError):
        return None


def point_runs(family: Any, runs: pd.DataFrame) -> pd.DataFrame:
    """The family's ``point_runs(runs)`` where it has one, else ``runs``."""
    hook = getattr(family, "point_runs", None)
    return runs if hook is None else hook(runs)


def family_design(family_name: str, info: dict) -> dict[str, Any]:
    """The study's design keys: as recorded by the study, else the family's declared defaults."""
    design = dict(info.get("design") or {})
    if not design:
        fam = study_family(family_name, info)
        design = {"variant_keys": list(getattr(fam, "variant_keys", ())),
                  "tuned_keys": list(getattr(fam, "tuned_keys", ())),
                  "seed_key": getattr(fam, "seed_key", "seed"),
                  "defaults": dict(fam.config_defaults()) if hasattr(fam, "config_defaults") else {}}
    return design


def load_study(db: str | Path, study: str | None = None, *, family: str | None = None) -> LoadedStudy:
    """A study's runs and points; ``study=None`` works when the database holds exactly one."""
    from scalinglab.store import RunStore

    name, fam = resolve_study(db, study, family)
    with RunStore(db, readonly=True) as store:
        info = store.study_info(name)
        runs = store.runs(study=name)
        config_keys = sorted(set().union(*(json.loads(c) for (c,) in store.conn.execute(
            "SELECT config FROM runs JOIN study_runs USING (key) WHERE study = ?", (name,)))))
    if runs.empty or not (runs["status"] == "complete").any():
        raise ConfigError(f"study {name!r} has no complete runs yet; finish (or resume) its sweep first")
    design = family_design(fam, info)
    from scalinglab.studies.points import fill_defaults, setting_keys

    runs = fill_defaults(runs, design.get("defaults", {}))
    used = point_runs(study_family(fam, info), runs)
    points = study_points(used, seed_key=design.get("seed_key", "seed"), tuned=tuple(design.get("tuned_keys", ())),
                          defaults=design.get("defaults", {}), config_keys=config_keys)
    done = used[used["status"] == "complete"]
    keys = setting_keys(done, seed_key=design.get("seed_key", "seed"), tuned=tuple(design.get("tuned_keys", ())),
                        config_keys=[*config_keys, *design.get("defaults", {})])
    return LoadedStudy(name=name, family=fam, info=info, runs=runs, points=points, design=design,
                       setting_keys=tuple(keys), point_runs=used)


EXPORT_FIRST = ["study", "family", "key", "status", "params", "flops", "examples", "val_loss", "val_acc", "wall_s",
                "code_version"]
EXPORT_SKIP = {"curve", "metrics", "versions", "owner", "heartbeat"}


def export_runs(db: str | Path, *, fmt: str = "csv", study: str | None = None, family: str | None = None,
                status: str | None = None) -> str:
    """Runs as CSV (one row per run: config keys, then results) or JSON records (with curves and metrics)."""
    import io

    from scalinglab.store import RunStore

    if fmt not in ("csv", "json"):
        raise ConfigError(f"format = {fmt!r} is invalid: must be 'csv' or 'json'")
    if not Path(db).exists():
        raise ConfigError(f"database {db} does not exist; run a sweep first or check --db")
    if study is not None:
        resolve_study(db, study, family)
    with RunStore(db, readonly=True) as store:
        runs = store.runs(study=study, status=status, family=family)
    if fmt == "json":
        return runs.to_json(orient="records", indent=1) + "\n"
    config = [c for c in runs.columns if c not in EXPORT_FIRST and c not in EXPORT_SKIP
              and c not in ("cost_flops", "error", "attempts", "created", "finished")]
    tail = [c for c in ("cost_flops", "attempts", "created", "finished", "error") if c in runs.columns]
    cols = config + [c for c in EXPORT_FIRST if c in runs.columns] + tail
    buf = io.StringIO()
    runs[cols].to_csv(buf, index=False)
    return buf.getvalue()
