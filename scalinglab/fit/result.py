"""One result object for every fit: parameters, derived quantities, intervals, tables, warnings.

``fit_law`` returns a :class:`FitResult`; ``scalinglab fit --json`` prints its
``to_dict()``, the studies and the report read the same object. The JSON
schema (``schema_version`` 1) is listed key by key in docs/fit-json.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import FitError

SCHEMA_VERSION = 1
INTERVAL_METHODS = ("bootstrap", "regression", "none")


def clean(value: Any) -> Any:
    """A JSON-ready copy: numpy scalars to Python, non-finite floats to None, frames to records."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return [clean(r) for r in value.to_dict(orient="records")]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def significant_digits(x: float) -> int:
    """Significant digits of ``x`` as written by its shortest round-trip repr (6e18 -> 1, 5.76e23 -> 3)."""
    if not math.isfinite(x) or x == 0:
        return 1
    mantissa = repr(float(x)).lower().split("e")[0].lstrip("-").replace(".", "").lstrip("0").rstrip("0")
    return max(1, len(mantissa))


def round_like(value: float, given) -> float:
    """``value``, computed from the ``given`` numbers, to the precision they were given with.

    The geometric mean of seven budgets given as 6e18 comes back as
    5.999999999999989e18; this returns 6e18. Equal inputs give that input;
    different ones one digit more than the most precise of them.
    """
    given = np.atleast_1d(np.asarray(given, dtype=float))
    if not math.isfinite(value) or value == 0 or given.size == 0:
        return float(value)
    if np.all(given == given[0]):
        return float(given[0])
    digits = max(significant_digits(float(g)) for g in given) + 1
    return float(f"{value:.{min(digits, 15)}g}")


def at_key(name: str, flops: float) -> str:
    """The key of a quantity at a budget, the same in every law: ``N_opt@1e+22``, ``loss@5.76e+23``."""
    return f"{name}@{float(flops):.15g}"


@dataclass(frozen=True, slots=True)
class Interval:
    """An estimate with its uncertainty; ``method`` says where lo/hi come from.

    ``supported`` is False when the data cannot back an interval (too few runs
    for the parameters, or resamples that all agree exactly); ``note`` says why.
    """

    estimate: float
    se: float = float("nan")
    lo: float = float("nan")
    hi: float = float("nan")
    level: float = 0.95
    method: str = "none"
    n_resamples: int | None = None
    n_failed: int | None = None
    supported: bool = True
    note: str = ""

    def __post_init__(self):
        if self.method not in INTERVAL_METHODS:
            raise FitError(f"interval method must be one of {INTERVAL_METHODS}, got {self.method!r}")

    def to_dict(self) -> dict[str, Any]:
        out = {"estimate": self.estimate, "se": self.se, "lo": self.lo, "hi": self.hi, "level": self.level,
               "method": self.method, "supported": self.supported, "note": self.note}
        if self.method == "bootstrap":
            out.update(n_resamples=self.n_resamples, n_failed=self.n_failed)
        return clean(out)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Interval:
        nan = float("nan")

        def num(k):
            v = d.get(k)
            return nan if v is None else float(v)
        return cls(estimate=num("estimate"), se=num("se"), lo=num("lo"), hi=num("hi"),
                   level=float(d.get("level", 0.95)), method=str(d.get("method", "none")),
                   n_resamples=d.get("n_resamples"), n_failed=d.get("n_failed"),
                   supported=bool(d.get("supported", True)), note=str(d.get("note", "")))


@dataclass
class FitResult:
    """A fitted law and everything needed to report, reproduce or use it.

    ``params`` are the law's own parameters, ``derived`` what follows from
    them (exponents a and b, N_opt/D_opt/loss at budgets as ``N_opt@1e+22``),
    ``intervals`` one :class:`Interval` per parameter and derived quantity.
    ``estimator`` (not serialised) is the fitted object behind predictions.
    """

    law: str
    params: dict[str, float]
    derived: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, Interval] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    backtest: dict | None = None
    warnings: list[str] = field(default_factory=list)
    selection: dict = field(default_factory=dict)
    method: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    formula: str = ""
    estimator: Any = None
    samples: pd.DataFrame | None = None
    runs: pd.DataFrame | None = None

    def value(self, name: str) -> float:
        """A parameter or derived quantity by name."""
        if name in self.params:
            return self.params[name]
        if name in self.derived:
            return self.derived[name]
        raise KeyError(f"{self.law} fit has no quantity {name!r}; it has {[*self.params, *self.derived]}")

    @property
    def supported(self) -> bool:
        """False when any interval is flagged as not supported by the data."""
        return all(iv.supported for iv in self.intervals.values())

    def summary(self) -> pd.DataFrame:
        """One row per quantity: estimate, se, lo, hi, method."""
        names = [*self.params, *self.derived]
        rows = []
        for k in names:
            iv = self.intervals.get(k, Interval(self.value(k)))
            rows.append({"quantity": k, "estimate": self.value(k), "se": iv.se, "lo": iv.lo, "hi": iv.hi,
                         "method": iv.method, "supported": iv.supported})
        return pd.DataFrame(rows).set_index("quantity")

    def to_dict(self, *, samples: bool = False) -> dict[str, Any]:
        """The documented JSON form (docs/fit-json.md); ``samples=True`` adds the bootstrap draws."""
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "law": self.law, "formula": self.formula,
            "params": dict(self.params), "derived": dict(self.derived),
            "intervals": {k: iv.to_dict() for k, iv in self.intervals.items()},
            "tables": {k: v for k, v in self.tables.items()},
            "backtest": self.backtest, "warnings": list(self.warnings), "selection": self.selection,
            "method": self.method, "diagnostics": self.diagnostics,
        }
        if samples and self.samples is not None:
            cols = [c for c in self.samples.columns if c in self.params or c in ("a", "b", "converged")]
            out["samples"] = {"columns": cols, "rows": self.samples[cols].to_numpy().tolist()}
        return clean(out)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitResult:
        """Rebuild a result (without its estimator) from :meth:`to_dict` output."""
        if not isinstance(d, dict) or d.get("schema_version") != SCHEMA_VERSION:
            raise FitError(f"not a scalinglab fit of schema version {SCHEMA_VERSION} "
                           f"(schema_version {d.get('schema_version') if isinstance(d, dict) else None!r}); "
                           "re-save it with `scalinglab fit --save`")

        def floats(m):
            return {str(k): (float("nan") if v is None else float(v)) for k, v in (m or {}).items()}
        samples = None
        if d.get("samples"):
            samples = pd.DataFrame(d["samples"]["rows"], columns=d["samples"]["columns"])
        return cls(law=str(d["law"]), params=floats(d.get("params")), derived=floats(d.get("derived")),
                   intervals={k: Interval.from_dict(v) for k, v in (d.get("intervals") or {}).items()},
                   tables={k: pd.DataFrame(v) for k, v in (d.get("tables") or {}).items()},
                   backtest=d.get("backtest"), warnings=list(d.get("warnings") or []),
                   selection=dict(d.get("selection") or {}), method=dict(d.get("method") or {}),
                   diagnostics=dict(d.get("diagnostics") or {}), formula=str(d.get("formula", "")),
                   samples=samples)
