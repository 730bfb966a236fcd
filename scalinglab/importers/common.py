"""What every importer shares: the field mapping, records for the store, and the write.

An importer reads its source into :class:`SourceRun` objects (a run's id, its
flat fields such as ``params.n_params`` or ``metrics.val_loss``, and the
metric histories it can fetch). :func:`build_records` applies an
:class:`ImportMapping` to them and returns ``(config, result)`` records in
the run store's shape; :func:`import_runs` writes those as a study.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from scalinglab.errors import ConfigError, DataError, StoreError
from scalinglab.fit.table import ALIASES
from scalinglab.store import RunStore, run_key

FAMILY = "imported"  # the store family of every imported run, whatever its source

# Prefixes the sources put before a field's own name; a field is also found by the name after one.
INPUT_PREFIXES = ("params", "hparams", "config", "tags")
RESULT_PREFIXES = ("metrics", "summary")
_PREFIXES = INPUT_PREFIXES + RESULT_PREFIXES

# Default source fields for each mapping key, in order of preference (input names from scalinglab.fit.table).
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "N": tuple(dict.fromkeys(ALIASES["N"] + ("num_params", "n_parameters"))),
    "D": tuple(dict.fromkeys(ALIASES["D"] + ("num_tokens", "tokens_seen", "n_examples", "examples_seen"))),
    "C": tuple(dict.fromkeys(ALIASES["C"] + ("train_flops", "total_flops"))),
    "loss": ("val_loss", "eval_loss", "validation_loss", "test_loss", "val/loss", "eval/loss", "loss/val",
             "hparam/val_loss", "final_loss", "loss"),
    "val_acc": ("val_acc", "val_accuracy", "eval_accuracy", "test_accuracy", "val/acc", "val/accuracy",
                "accuracy", "acc"),
    "seed": ALIASES["seed"],
    "curve": ("train_loss", "train/loss", "loss/train", "training_loss", "curve", "loss"),
}
KEYS = ("N", "D", "C", "loss", "val_acc", "seed", "curve", "run", "id")
_INPUT_KEYS = ("N", "D", "C", "seed", "run", "id", "group")


@dataclass(frozen=True)
class ImportMapping:
    """Which source field holds each quantity; ``None`` means the first default name present.

    ``curve`` is the metric whose history becomes the run's loss curve; its
    steps are multiplied by ``examples_per_step`` (log with step = examples or
    tokens seen and keep 1). ``group`` fields are copied into each run's config
    so a fit can group or filter on them. ``run`` and ``id`` name the run-name
    and run-id columns of a table export.
    """

    fields: dict[str, str] = field(default_factory=dict)
    group: tuple[str, ...] = ()
    examples_per_step: float = 1.0

    def __post_init__(self):
        unknown = sorted(set(self.fields) - set(KEYS))
        if unknown:
            raise ConfigError(f"unknown mapping key {unknown[0]!r}: use one of {', '.join(KEYS)} "
                              "(e.g. --map N=params.n_params)")
        if not (self.examples_per_step > 0 and math.isfinite(self.examples_per_step)):
            raise ConfigError(f"--examples-per-step must be a positive number, got {self.examples_per_step}")

    @classmethod
    def from_pairs(cls, pairs: list[str] | None = None, group: list[str] | None = None,
                   examples_per_step: float = 1.0) -> "ImportMapping":
        """Parse ``KEY=FIELD`` strings (the CLI's ``--map``); keys N, D, C are case-insensitive."""
        fields = {}
        for pair in pairs or []:
            key, sep, value = pair.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key or not value:
                raise ConfigError(f"--map {pair!r} is not KEY=FIELD; write e.g. --map N=params.n_params")
            fields[key.upper() if key.upper() in ("N", "D", "C") else key] = value
        return cls(fields=fields, group=tuple(group or ()), examples_per_step=examples_per_step)


@dataclass
class SourceRun:
    """One run as a source holds it: id, display name, flat fields, and fetchable metric histories."""

    source_id: str
    name: str
    fields: dict[str, Any]
    series: set[str] = field(default_factory=set)                 # fields that have a history
    history: Callable[[str], list[tuple[float, float]]] = lambda f: []
    wall_s: float | None = None


class Records(list):
    """A list of ``(config, result)`` records, with ``notes`` on what was derived or skipped."""

    def __init__(self, items=(), *, notes: list[str] | None = None, source: str = "",
                 mapping: dict[str, str] | None = None):
        super().__init__(items)
        self.notes = notes or []
        self.source = source
        self.mapping = mapping or {}


def require_library(module: str, what: str):
    """Import an optional library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"importing {what} needs the {module} package: pip install 'scalinglab[import]'") from None


def bare(name: str) -> str:
    """A field's own name: ``params.n_params`` -> ``n_params``."""
    head, dot, rest = name.partition(".")
    return rest if dot and head in _PREFIXES else name


def resolve_field(key: str, spec: str | None, names: set[str], *, what: str = "field") -> str | None:
    """The source field for mapping ``key``: the user's ``spec`` (which must exist), else the first default.

    A name matches a field exactly or by its own name after a source prefix
    (``n_params`` finds ``params.n_params``, and ``config.model.n_params``). When several fields share that
    name, inputs prefer params/config, results prefer metrics/summary.
    """
    def lookup(name: str) -> list[str]:
        if name in names:
            return [name]
        hits = [f for f in names if bare(f) == name and f != name]
        if not hits:        # a nested key by its last part: config.model.n_params is n_params
            hits = [f for f in names if bare(f) != f and f.rsplit(".", 1)[-1] == name]
        if not hits and bare(name) != name and bare(name) in names:
            hits = [bare(name)]
        order = INPUT_PREFIXES + RESULT_PREFIXES if key in _INPUT_KEYS else RESULT_PREFIXES + INPUT_PREFIXES
        rank = {p: i for i, p in enumerate(order)}
        return sorted(hits, key=lambda f: rank.get(f.partition(".")[0], len(rank)))

    if spec is not None:
        hits = lookup(spec)
        if not hits:
            shown = ", ".join(sorted(names)[:40]) + (", ..." if len(names) > 40 else "")
            flag = f"--group {spec}" if key == "group" else f"--map {key}={spec}"
            raise DataError(f"{what} {spec!r} (given with {flag}) is in no run; the runs have: {shown or 'nothing'}")
        if len(hits) > 1 and hits[0].partition(".")[0] == hits[1].partition(".")[0]:
            raise DataError(f"{spec!r} (given with --map {key}=) matches {', '.join(hits)}; give the full name")
        return hits[0]
    for name in DEFAULT_FIELDS.get(key, ()):
        hits = lookup(name)
        if hits:
            return hits[0]
    return None


def number(value: Any, *, run: str, name: str) -> float | None:
    """A field value as a float (MLflow params are strings); None when absent or empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise DataError(f"run {run!r}: field {name!r} holds {value!r}, not a number; map another field")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DataError(f"run {run!r}: field {name!r} holds {value!r}, not a number; map another field "
                        "(e.g. --map N=params.n_params)") from None
    return None if math.isnan(x) else x


def build_records(runs: list[SourceRun], mapping: ImportMapping | None = None, *,
                  source: str, description: str = "") -> Records:
    """Apply ``mapping`` to source runs: one ``(config, result)`` record per run that has a loss.

    The config identifies the run (source kind, source id, run name, the
    mapping used, seed and group values), so importing the same runs with the
    same mapping again gives the same store keys. C = 6 N D fills a missing C.
    """
    mapping = mapping or ImportMapping()
    if not runs:
        raise DataError(f"{description or source} holds no runs to import")
    names = set().union(*(r.fields for r in runs))
    series = set().union(*(r.series for r in runs))
    chosen = {key: resolve_field(key, mapping.fields.get(key), names)
              for key in ("N", "D", "C", "loss", "val_acc", "seed")}
    chosen["curve"] = resolve_field("curve", mapping.fields.get("curve"), series, what="metric history")
    groups = [resolve_field("group", g, names) for g in mapping.group]
    if chosen["loss"] is None:
        shown = ", ".join(sorted(names)[:40]) or "nothing"
        raise DataError(f"no loss field in {description or source} (looked for {', '.join(DEFAULT_FIELDS['loss'])}); "
                        f"name it with --map loss=FIELD; the runs have: {shown}")
    ids = [r.source_id for r in runs]
    if len(set(ids)) < len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"two runs in {description or source} share the id {dup!r}; name a unique id column "
                        "with --map id=COLUMN")

    records, no_loss, derived_c, with_curve = [], [], 0, 0
    used = {k: v for k, v in chosen.items() if v is not None}
    for run in runs:
        get = {k: number(run.fields.get(f), run=run.name, name=f) for k, f in used.items()
               if k not in ("curve", "seed")}
        if get.get("loss") is None:
            no_loss.append(run.name)
            continue
        n, d, c = get.get("N"), get.get("D"), get.get("C")
        derived = []
        if c is None and n is not None and d is not None:
            c, derived = 6.0 * n * d, ["C = 6 N D"]
            derived_c += 1
        curve = []
        if chosen["curve"] is not None and chosen["curve"] in run.series:
            curve = [[step * mapping.examples_per_step, value] for step, value in run.history(chosen["curve"])]
            with_curve += bool(curve)
        config: dict[str, Any] = {"source": source, "source_id": run.source_id, "name": run.name,
                                  "mapping": dict(used)}
        if "seed" in used and run.fields.get(used["seed"]) is not None:
            config["seed"] = _plain(run.fields[used["seed"]])
        for g in groups:
            config[bare(g)] = _plain(run.fields.get(g))
        result = {"params": None if n is None else int(round(n)), "examples": None if d is None else int(round(d)),
                  "flops": c, "val_loss": get["loss"], "val_acc": get.get("val_acc"), "curve": curve,
                  "wall_s": run.wall_s,
                  "metrics": {"source_fields": {k: _plain(v) for k, v in sorted(run.fields.items())},
                              "derived": derived}}
        records.append((config, result))
    if not records:
        raise DataError(f"no run in {description or source} has a value for {chosen['loss']!r}; "
                        "choose the loss with --map loss=FIELD")
    notes = []
    if derived_c:
        notes.append(f"C derived as 6 N D (Kaplan et al. 2020) for {derived_c} of {len(records)} runs "
                     "(no FLOPs value; give a field with --map C=FIELD)")
    if no_loss:
        notes.append(f"skipped {len(no_loss)} run(s) without {chosen['loss']!r}: {', '.join(no_loss[:5])}"
                     + (" ..." if len(no_loss) > 5 else ""))
    if chosen["curve"] is None:
        notes.append("no loss curves: no metric history named like a training loss; choose one with "
                     "--map curve=METRIC")
    mapped = {**used, **({"C": f"6 N D ({derived_c} runs)"} if derived_c and "C" not in used else {}),
              **({"curve": f"{chosen['curve']} ({with_curve} runs with a history)"} if chosen["curve"] else {})}
    return Records(records, notes=notes, source=description or source, mapping=mapped)


@dataclass
class ImportSummary:
    """What :func:`import_runs` did: keys added, how many were already stored, and the study."""

    study: str
    db: str
    added: list[str]
    already: int
    notes: list[str]
    mapping: dict[str, str]


def import_runs(store_or_path: RunStore | str | Path, records: list[tuple[dict, dict]], *, study: str,
                family: str = FAMILY, info: dict | None = None) -> ImportSummary:
    """Write imported records as study ``study`` (one transaction); re-importing adds nothing.

    A record whose source run is already in the study under another config
    (imported with a different mapping) is refused: import it into a new study.
    Finished runs already in the store are never changed.
    """
    if not study:
        raise ConfigError("an import needs a study name: --study NAME")
    own = not isinstance(store_or_path, RunStore)
    store = RunStore(store_or_path) if own else store_or_path
    try:
        known = study in set(store.studies()["name"])
        existing = store.runs(study=study) if known else None
        if existing is not None and not existing.empty and "source_id" in existing:
            stored = dict(zip(existing["source_id"].astype(str), existing["key"]))
            for config, _ in records:
                key = stored.get(str(config["source_id"]))
                if key is not None and key != run_key(family, config):
                    raise StoreError(f"run {config['name']!r} is already in study {study!r} of {store.path}, "
                                     "imported with another mapping; import into a new --study name")
        meta = {"imported_from": getattr(records, "source", ""), "mapping": getattr(records, "mapping", {}),
                **(info or {})}
        added = store.add_finished_runs(study, family, records, info=meta)
    finally:
        if own:
            store.close()
    return ImportSummary(study=study, db=str(store.path), added=added, already=len(records) - len(added),
                         notes=list(getattr(records, "notes", [])), mapping=dict(getattr(records, "mapping", {})))


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a field value (numbers stay numbers)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
