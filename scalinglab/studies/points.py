"""From a study's runs to the points every fit reads: one row per setting, averaged over seeds.

A *setting* is a run config without its seed. Some config keys are
*variants* (e.g. MNIST's dropout): each variant value is analysed on its own
and compared with the others. Some are *tuned* (e.g. a learning rate swept
per setting): for each setting only the value with the lowest seed-mean loss
is kept, and every candidate stays in the database.
"""

from __future__ import annotations

import numbers

import pandas as pd

from scalinglab.errors import FitError

SEED_KEY = "seed"
RESULT_COLUMNS = ("key", "family", "status", "cost_flops", "params", "flops", "examples", "val_loss", "val_acc",
                  "curve", "metrics", "wall_s", "error", "code_version", "versions", "owner", "heartbeat",
                  "attempts", "created", "finished")


def config_columns(runs: pd.DataFrame) -> list[str]:
    """The config keys of ``runs`` (every column that is not a stored result field)."""
    return [c for c in runs.columns if c not in RESULT_COLUMNS]


def fill_defaults(runs: pd.DataFrame, defaults: dict) -> pd.DataFrame:
    """Fill config keys a run left at their default (absent, or NaN where other runs set them)."""
    runs = runs.copy()
    for key, value in defaults.items():
        runs[key] = runs[key].fillna(value) if key in runs else value
    return runs


def setting_keys(runs: pd.DataFrame, *, seed_key: str = SEED_KEY, tuned: tuple[str, ...] = (),
                 config_keys: list[str] | None = None) -> list[str]:
    """Config keys that identify a setting: all but the seed and the tuned keys, and only those that vary.

    ``config_keys`` lists the runs' config keys where they are known (a config
    key may share its name with a result column, e.g. a family whose config
    says how many ``examples`` to train on).
    """
    keys = [c for c in dict.fromkeys(config_keys or config_columns(runs)) if c in runs and c != seed_key
            and c not in tuned]
    return [c for c in keys if runs[c].astype(str).nunique() > 1] or keys[:1]


def select_tuned(runs: pd.DataFrame, tuned: tuple[str, ...], settings: list[str]) -> pd.DataFrame:
    """Per setting, keep the runs of the tuned values (e.g. the LR) with the lowest seed-mean loss."""
    tuned = tuple(t for t in tuned if t in runs.columns)
    if runs.empty or not tuned or runs.groupby(settings, dropna=False)[list(tuned)].nunique().max().max() <= 1:
        return runs
    mean = runs.groupby([*settings, *tuned], as_index=False, dropna=False).val_loss.mean()
    best = mean.loc[mean.groupby(settings, dropna=False).val_loss.idxmin(), [*settings, *tuned]]
    return runs.merge(best, on=[*settings, *tuned])


def _scalar_metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """Numeric scalars every run stores in its metrics (e.g. non-embedding params, unique tokens)."""
    rows = [m if isinstance(m, dict) else {} for m in runs["metrics"]] if "metrics" in runs else [{}] * len(runs)
    keys = set.intersection(*(set(k for k, v in m.items() if isinstance(v, numbers.Real) and not isinstance(v, bool))
                              for m in rows)) if rows else set()
    return pd.DataFrame({k: [float(m[k]) for m in rows] for k in sorted(keys)}, index=runs.index)


def study_points(runs: pd.DataFrame, *, seed_key: str = SEED_KEY, tuned: tuple[str, ...] = (),
                 defaults: dict | None = None, config_keys: list[str] | None = None) -> pd.DataFrame:
    """Seed-mean points of a study's complete runs, in the fit columns N, D, C, loss.

    Columns: every setting key; N (params), D (examples or tokens), C (exact
    training FLOPs), loss (mean validation loss over seeds), loss_sd,
    n_seeds, acc (mean accuracy, where the task has one), run (a label), the
    tuned keys at their chosen value, and the mean of every numeric metric
    the family stores with each run.
    """
    runs = fill_defaults(runs, defaults or {})
    done = runs[runs["status"] == "complete"]
    if done.empty:
        raise FitError("the study has no complete runs to analyse; run (or resume) its sweep first")
    settings = setting_keys(done, seed_key=seed_key, tuned=tuned,
                            config_keys=None if config_keys is None else [*config_keys, *(defaults or {})])
    done = select_tuned(done, tuned, settings).reset_index(drop=True)
    done = pd.concat([done, _scalar_metrics(done).add_prefix("m_")], axis=1)
    seeds = seed_key if seed_key in done else "key"
    agg = {"N": ("params", "first"), "D": ("examples", "first"), "C": ("flops", "first"),
           "loss": ("val_loss", "mean"), "loss_sd": ("val_loss", "std"), "n_seeds": (seeds, "nunique")}
    if "val_acc" in done and done["val_acc"].notna().all():
        agg["acc"] = ("val_acc", "mean")
    agg.update({t: (t, "first") for t in tuned if t in done})
    agg.update({c[2:]: (c, "mean") for c in done.columns if c.startswith("m_") and c[2:] not in agg})
    agg = {name: spec for name, spec in agg.items() if name not in settings}  # a setting key is its own column
    points = done.groupby(settings, dropna=False).agg(**agg).reset_index()
    label = "run" if "run" not in points else "setting"  # a family may use `run` as a config key itself
    points[label] = [" ".join(f"{k}={_short(v)}" for k, v in zip(settings, row))
                     for row in points[settings].itertuples(index=False)]
    return points.sort_values(["C", "N"]).reset_index(drop=True)


def _short(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
