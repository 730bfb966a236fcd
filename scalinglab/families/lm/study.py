"""The language-model scaling study: Kaplan's and Chinchilla's setting at toy scale.

``run_lm_study("quick")`` trains a preset set of transformer runs on
Shakespeare into the run database (the MNIST study's schema, family
``"lm"``), then analyses them:

* **Approach 2** (Hoffmann et al. 2022, Sec. 3.2): per compute budget a
  parabola of validation loss in log N, its minimum N_opt, the tokens D_opt
  the runs at that budget train for at N_opt (interpolated: our C is the
  exact FLOP count, not 6ND), then N_opt ∝ C^a and D_opt ∝ C^b. Done twice:
  N = total parameters (Chinchilla) and N = non-embedding (Kaplan), since the
  choice moves the exponent (Pearce & Song 2024; Porian et al. 2024).
  Intervals: a run-level bootstrap of the whole procedure.
* **Approach 3**: L(N, D) = E + A/N^alpha + B/D^beta fitted with
  :class:`scalinglab.fit.parametric.ChinchillaFit` and bootstrapped.
* **Critical batch size**: every run's B_simple per curve segment, against
  its training loss, with a power-law fit B ∝ L^(-1/alpha_B) (Kaplan et al.
  2020, Sec. 5.1, eq. 5.2 and Fig. 10).
* **Forecasts**: each run's final training loss predicted from the first half
  of its curve (:mod:`scalinglab.fit.forecast`), and the error.

Designs. *IsoFLOP*: for each budget C, ``per_budget`` neighbouring sizes of
the size ladder, centred on the one whose run would see
``centre_tokens_per_param`` tokens per parameter, each trained on
D = C / (exact training FLOPs per token), so every run of a budget costs the
same C. *Grid*: every size x every token budget.

Every number is computed from the runs in the database; plots are drawn from
plain data (``LMStudyAnalysis``), so tests check data, not pixels.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import ConfigError, FitError
from scalinglab.families.lm.model import SIZES, flops_per_token, param_counts, size_config

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


def bf16_supported() -> bool:
    """True when this CPU has native bf16 matmuls (AVX512-BF16 / AMX), where autocast pays off."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def get_preset(name: str, overrides: dict | None = None) -> LMStudyPreset:
    if name not in PRESETS:
        raise ConfigError(f"unknown LM study preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    run = {"precision": "bf16" if bf16_supported() else "fp32", **preset.run, **(overrides or {})}
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
# Analysis (pure functions of a runs frame)
# ---------------------------------------------------------------------------

def fit_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per complete run: N (total), N_ne, D (tokens), C (exact FLOPs), loss, seed, size, curves."""
    rows = []
    for _, r in runs.iterrows():
        m = r["metrics"]
        rows.append({"run": r["key"], "size": r["size"], "seed": r.get("seed", 0), "N": float(r["params"]),
                     "N_ne": float(m["params_non_embedding"]), "D": float(r["examples"]), "C": float(r["flops"]),
                     "C_6nd": float(m["flops_6nd"]), "loss": float(r["val_loss"]), "acc": r.get("val_acc"),
                     "epochs": m.get("epochs"), "lr": m.get("lr"), "noise_scale": m.get("noise_scale"),
                     "curve": r["curve"], "noise_curve": m.get("noise_curve", []), "wall_s": r.get("wall_s")})
    frame = pd.DataFrame(rows)
    if len(frame):
        frame = frame[np.isfinite(frame["loss"])].reset_index(drop=True)
    return frame


def _budget_groups(frame: pd.DataFrame, budgets: tuple[float, ...]) -> np.ndarray:
    """Nominal budget of each run: the preset budget nearest its FLOPs (runs beyond 10% belong to none)."""
    if not budgets:
        return np.full(len(frame), np.nan)
    lb = np.log(np.asarray(budgets))
    lc = np.log(frame["C"].to_numpy(float))[:, None]
    nearest = np.abs(lc - lb[None]).argmin(1)
    close = np.abs(lc[:, 0] - lb[nearest]) < math.log(1.1)
    return np.where(close, np.asarray(budgets)[nearest], np.nan)


def approach2(frame: pd.DataFrame, *, n_col: str = "N") -> dict[str, Any]:
    """IsoFLOP minima and exponents. ``frame`` needs columns budget, N/N_ne, D, loss."""
    from scalinglab.fit.isoflop import isoflop_profiles

    sub = frame[np.isfinite(frame["budget"])]
    iso = isoflop_profiles(sub.assign(N=sub[n_col], C=sub["budget"]), budget="budget")
    prof = iso.profiles.copy()
    d_opt = []
    for _, p in prof.iterrows():
        g = sub[sub["budget"] == p["C"]]
        if not np.isfinite(p["N_opt"]) or len(g) < 2:
            d_opt.append(np.nan)
            continue
        # Within a budget log D is (almost exactly) linear in log N; read D at N_opt off that line.
        slope, icpt = np.polyfit(np.log(g[n_col]), np.log(g["D"]), 1)
        d_opt.append(float(np.exp(icpt + slope * math.log(p["N_opt"]))))
    prof["D_opt"] = d_opt  # tokens actually trained at N_opt (not C / 6 N_opt)
    prof["tokens_per_param"] = prof["D_opt"] / prof["N_opt"]
    used = prof[prof["N_opt"].notna() & prof["inside"]]
    b = b_se = float("nan")
    if len(used) >= 2:
        b, b_se = _loglog_slope(used["C"], used["D_opt"])
    return {"profiles": prof, "a": iso.a, "a_se": iso.a_se, "b": b, "b_se": b_se,
            "n_used": int(len(used)), "warnings": list(iso.warnings)}


def _loglog_slope(x, y) -> tuple[float, float]:
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if len(lx) < 2:
        return float("nan"), float("nan")
    A = np.column_stack([lx, np.ones_like(lx)])
    coef, res, *_ = np.linalg.lstsq(A, ly, rcond=None)
    dof = len(lx) - 2
    if dof <= 0:
        return float(coef[0]), float("nan")
    resid = ly - A @ coef
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.inv(A.T @ A)
    return float(coef[0]), float(math.sqrt(cov[0, 0]))


def _approach2_statistic(n_col: str):
    def stat(runs: pd.DataFrame) -> dict[str, float]:
        try:
            res = approach2(runs, n_col=n_col)
        except ArithmeticError:  # a resample with a nearly flat profile puts N_opt at 0 or infinity
            return {"a": np.nan, "b": np.nan, "tokens_per_param": np.nan}
        prof = res["profiles"]
        used = prof[prof["N_opt"].notna() & prof["inside"]]
        return {"a": res["a"], "b": res["b"],
                "tokens_per_param": float(np.exp(np.log(used["tokens_per_param"]).mean())) if len(used) else np.nan}
    return stat


def approach3(frame: pd.DataFrame, *, n_resamples: int, at_flops=()) -> dict[str, Any]:
    """Chinchilla's parametric fit L = E + A/N^alpha + B/D^beta (N total), bootstrapped."""
    from scalinglab.fit.bootstrap import bootstrap
    from scalinglab.fit.parametric import ChinchillaFit

    data = frame[["N", "D", "C", "loss", "run"]].copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = ChinchillaFit().fit(data)
        boot = bootstrap(est, data, n_resamples=n_resamples, cluster=None, at_flops=at_flops)
    return {"params": dict(est.params_), "a": est.a_, "b": est.b_, "boot": boot,
            "warnings": sorted({str(w.message) for w in caught})}


def noise_vs_loss(frame: pd.DataFrame, *, skip_fraction: float = 0.1) -> dict[str, Any]:
    """B_simple (tokens) against training loss over all runs' curve segments; log-log slope fit.

    Segments in the first ``skip_fraction`` of a run (warmup, loss far above
    the power-law regime) are left out of the fit but kept in ``points``.
    """
    points = []
    for _, r in frame.iterrows():
        curve = r["noise_curve"] or []
        end = curve[-1][0] if curve else 0
        for tokens, loss, b in curve:
            points.append({"size": r["size"], "run": r["run"], "tokens": tokens, "loss": loss, "b_simple": b,
                           "fit": bool(tokens > skip_fraction * end and b is not None and np.isfinite(b) and b > 0)})
    pts = pd.DataFrame(points, columns=["size", "run", "tokens", "loss", "b_simple", "fit"])
    use = pts[pts["fit"]] if len(pts) else pts
    slope = se = float("nan")
    if len(use) >= 3:
        slope, se = _loglog_slope(use["loss"], use["b_simple"])
    # Kaplan's form B_crit(L) = B* / L^(1/alpha_B): slope = -1/alpha_B.
    alpha_b = -1.0 / slope if np.isfinite(slope) and slope < 0 else float("nan")
    return {"points": pts, "slope": slope, "slope_se": se, "alpha_B": alpha_b, "n_points": int(len(use))}


def forecasts(frame: pd.DataFrame, *, fit_fraction: float = 0.5) -> pd.DataFrame:
    """Per run: the final training loss forecast from the first ``fit_fraction`` of its curve."""
    from scalinglab.fit.forecast import forecast_final_loss

    rows = []
    for _, r in frame.iterrows():
        try:
            f = forecast_final_loss(r["curve"], fit_fraction=fit_fraction)
        except FitError as exc:
            rows.append({"run": r["run"], "size": r["size"], "C": r["C"], "error": str(exc)})
            continue
        rows.append({"run": r["run"], "size": r["size"], "C": r["C"], "predicted": f.predicted,
                     "actual": f.actual, "rel_error": f.relative_error, "L_inf": f.fit.L_inf,
                     "alpha": f.fit.alpha, "fit_rms": f.fit.rms})
    return pd.DataFrame(rows)


@dataclass
class LMStudyAnalysis:
    """Everything the report shows, as plain data."""

    preset: str
    runs: pd.DataFrame  # fit_frame plus 'budget'
    approach2: dict[str, Any] | None  # N = total parameters
    approach2_ne: dict[str, Any] | None  # N = non-embedding parameters
    approach2_ci: dict[str, Any] | None  # bootstrap intervals of a, b, tokens/param (total N)
    approach2_ne_ci: dict[str, Any] | None
    approach3: dict[str, Any] | None
    noise: dict[str, Any]
    forecasts: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        def frame(df):
            return json.loads(df.to_json(orient="records")) if df is not None else None

        def a2(res, ci):
            if res is None:
                return None
            return {"a": res["a"], "a_se": res["a_se"], "b": res["b"], "b_se": res["b_se"],
                    "n_budgets_used": res["n_used"], "profiles": frame(res["profiles"]),
                    "interval": ci, "warnings": res["warnings"]}

        a3 = None
        if self.approach3 is not None:
            boot = self.approach3["boot"]
            a3 = {"params": self.approach3["params"], "a": self.approach3["a"], "b": self.approach3["b"],
                  "interval": boot.to_dict(), "estimate": boot.estimate, "warnings": self.approach3["warnings"]}
        cols = [c for c in self.runs.columns if c not in ("curve", "noise_curve")]
        return {"preset": self.preset, "runs": frame(self.runs[cols]),
                "approach2_total": a2(self.approach2, self.approach2_ci),
                "approach2_non_embedding": a2(self.approach2_ne, self.approach2_ne_ci),
                "approach3": a3,
                "noise_scale": {k: v for k, v in self.noise.items() if k != "points"},
                "noise_points": frame(self.noise["points"]),
                "forecasts": frame(self.forecasts), "warnings": self.warnings}


def _interval(boot) -> dict[str, Any]:
    return {k: {"estimate": boot.estimate.get(k), "se": boot.se[k], "lo": boot.ci[k][0], "hi": boot.ci[k][1]}
            for k in boot.se} | {"level": boot.level, "n_resamples": boot.n_resamples, "n_failed": boot.n_failed}


def analyse(runs: pd.DataFrame, preset: LMStudyPreset) -> LMStudyAnalysis:
    """All fits of the study from its runs (a ``RunStore.runs`` frame of complete runs)."""
    from scalinglab.fit.bootstrap import bootstrap_statistic

    frame = fit_frame(runs)
    notes: list[str] = []
    if len(frame) == 0:
        raise FitError("the study has no complete runs with a finite loss; nothing to fit")
    frame["budget"] = _budget_groups(frame, preset.budgets)
    a2 = a2_ne = a2_ci = a2_ne_ci = a3 = None
    if preset.budgets:
        try:
            a2 = approach2(frame, n_col="N")
            a2_ne = approach2(frame, n_col="N_ne")
            iso = frame[np.isfinite(frame["budget"])].reset_index(drop=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                a2_ci = _interval(bootstrap_statistic(_approach2_statistic("N"), iso,
                                                      n_resamples=preset.bootstrap, cluster=None))
                a2_ne_ci = _interval(bootstrap_statistic(_approach2_statistic("N_ne"), iso,
                                                         n_resamples=preset.bootstrap, cluster=None))
        except FitError as exc:
            notes.append(f"Approach 2 not possible: {exc}")
    if len(frame) >= 6:
        try:
            a3 = approach3(frame, n_resamples=preset.bootstrap, at_flops=preset.budgets[-1:])
            if not (a3["params"]["alpha"] > 0 and a3["params"]["beta"] > 0):
                notes.append("Approach 3 fit is degenerate (an exponent <= 0): the runs do not "
                             "constrain L(N, D); add budgets or sizes")
        except FitError as exc:
            notes.append(f"Approach 3 not possible: {exc}")
    else:
        notes.append(f"Approach 3 needs at least 6 runs, the study has {len(frame)}")
    return LMStudyAnalysis(preset=preset.name, runs=frame, approach2=a2, approach2_ne=a2_ne,
                           approach2_ci=a2_ci, approach2_ne_ci=a2_ne_ci, approach3=a3,
                           noise=noise_vs_loss(frame), forecasts=forecasts(frame), warnings=notes)


# ---------------------------------------------------------------------------
# Summary text and plots
# ---------------------------------------------------------------------------

def _fmt_ci(ci: dict | None, key: str) -> str:
    if not ci or key not in ci or ci[key]["lo"] is None or not np.isfinite(ci[key]["lo"]):
        return ""
    return f" [{ci[key]['lo']:.2f}, {ci[key]['hi']:.2f}]"


def summary_text(an: LMStudyAnalysis) -> str:
    lines = [f"LM study '{an.preset}': {len(an.runs)} complete runs"]
    if an.approach2 is not None:
        prof = an.approach2["profiles"]
        lines.append("IsoFLOP minima (N = total parameters):")
        lines.append(f"  {'C (FLOPs)':>10} {'runs':>4} {'N_opt':>10} {'D_opt':>10} {'D/N':>7} {'loss':>6}  note")
        for _, p in prof.iterrows():
            lines.append(f"  {p['C']:10.3g} {int(p['n_runs']):4d} {p['N_opt']:10.4g} {p['D_opt']:10.4g} "
                         f"{p['tokens_per_param']:7.1f} {p['loss_opt']:6.3f}  {p['note']}")
        for label, res, ci in (("total", an.approach2, an.approach2_ci),
                               ("non-embedding", an.approach2_ne, an.approach2_ne_ci)):
            lines.append(f"Approach 2 ({label} N): a = {res['a']:.3f}{_fmt_ci(ci, 'a')}, "
                         f"b = {res['b']:.3f}{_fmt_ci(ci, 'b')}  ({res['n_used']} budgets; 95% bootstrap)")
        if an.approach2_ci:
            tpp = an.approach2_ci["tokens_per_param"]
            lines.append(f"Tokens per parameter at the optimum (geometric mean over budgets): "
                         f"{tpp['estimate']:.1f}{_fmt_ci(an.approach2_ci, 'tokens_per_param')}"
                         f"  (Chinchilla: ~20)")
    if an.approach3 is not None:
        p, boot = an.approach3["params"], an.approach3["boot"]
        lines.append(f"Approach 3: E = {p['E']:.3f}, A = {p['A']:.3g}, B = {p['B']:.3g}, "
                     f"alpha = {p['alpha']:.3f}{_fmt_ci(_interval(boot), 'alpha')}, "
                     f"beta = {p['beta']:.3f}{_fmt_ci(_interval(boot), 'beta')}")
        lines.append(f"            a = {an.approach3['a']:.3f}{_fmt_ci(_interval(boot), 'a')}, "
                     f"b = {an.approach3['b']:.3f}{_fmt_ci(_interval(boot), 'b')}")
    nz = an.noise
    if nz["n_points"]:
        lines.append(f"Noise scale: B_simple ∝ L^{nz['slope']:.2f} ± {nz['slope_se']:.2f} over {nz['n_points']} "
                     f"segments (Kaplan: B_crit ∝ L^-4.8, alpha_B = 0.21); alpha_B = {nz['alpha_B']:.3f}")
    fc = an.forecasts
    if len(fc) and "rel_error" in fc:
        err = fc["rel_error"].dropna()
        if len(err):
            lines.append(f"Forecasts from the first half of each curve: final train loss off by "
                         f"{100 * err.median():+.1f}% (median), {100 * err.abs().max():.1f}% (worst) "
                         f"over {len(err)} runs")
    lines.extend(f"note: {w}" for w in an.warnings)
    return "\n".join(lines)


def plot_study(an: LMStudyAnalysis, out: Path) -> list[Path]:
    """IsoFLOP curves, optimal N and D vs C, B_simple vs loss, and loss curves with forecasts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    frame = an.runs
    if an.approach2 is not None:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        prof = an.approach2["profiles"]
        cmap = plt.get_cmap("viridis")
        budgets = sorted(b for b in frame["budget"].dropna().unique())
        for i, b in enumerate(budgets):
            g = frame[frame["budget"] == b].sort_values("N")
            color = cmap(i / max(1, len(budgets) - 1))
            ax1.plot(g["N"], g["loss"], "o", color=color, label=f"C = {b:.0e}")
            x = np.log(g["N"].to_numpy())
            if len(np.unique(x)) >= 3:
                coef = np.polyfit(x, g["loss"].to_numpy(), 2)
                xs = np.linspace(x.min(), x.max(), 50)
                ax1.plot(np.exp(xs), np.polyval(coef, xs), "-", color=color, alpha=0.7)
        ok = prof[prof["N_opt"].notna()]
        ax1.plot(ok["N_opt"], ok["loss_opt"], "k*", ms=10, label="minimum")
        ax1.set(xscale="log", xlabel="parameters N (total)", ylabel="validation loss (nats/token)",
                title="IsoFLOP profiles")
        ax1.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax1.legend(fontsize=8)
        ins = prof[prof["inside"]]
        ax2.loglog(ins["C"], ins["N_opt"], "o-", label=f"N_opt ∝ C^{an.approach2['a']:.2f}")
        ax2.loglog(ins["C"], ins["D_opt"], "s-", label=f"D_opt ∝ C^{an.approach2['b']:.2f}")
        ax2.loglog(ins["C"], CHINCHILLA_TOKENS_PER_PARAM * ins["N_opt"], "k:", label="D = 20 N (Chinchilla)")
        ax2.set(xlabel="training FLOPs C (exact)", ylabel="N_opt, D_opt", title="Compute-optimal allocation")
        ax2.legend(fontsize=8)
        fig.tight_layout()
        paths.append(_save(fig, out / "lm_isoflop.png"))
    pts = an.noise["points"]
    if len(pts):
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
        for size, g in pts[pts["fit"]].groupby("size", sort=False):
            ax.plot(g["loss"], g["b_simple"], ".", label=size, alpha=0.7)
        if np.isfinite(an.noise["slope"]):
            use = pts[pts["fit"]]
            ls = np.linspace(np.log(use["loss"].min()), np.log(use["loss"].max()), 20)
            icpt = np.mean(np.log(use["b_simple"]) - an.noise["slope"] * np.log(use["loss"]))
            ax.plot(np.exp(ls), np.exp(icpt + an.noise["slope"] * ls), "k-",
                    label=f"B ∝ L^{an.noise['slope']:.1f}")
        ax.set(xscale="log", yscale="log", xlabel="training loss (nats/token)", ylabel="B_simple (tokens)",
               title="Gradient noise scale vs loss")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        paths.append(_save(fig, out / "lm_noise_scale.png"))
    if len(frame):
        fig, ax = plt.subplots(figsize=(6, 4.2))
        fc = an.forecasts.set_index("run") if len(an.forecasts) else pd.DataFrame()
        for _, r in frame.sort_values("C").iterrows():
            c = np.asarray(r["curve"])
            line, = ax.plot(c[:, 0], c[:, 1], "-", lw=1, alpha=0.8)
            if r["run"] in fc.index and "L_inf" in fc and np.isfinite(fc.loc[r["run"], "predicted"]):
                ax.plot([c[-1, 0]], [fc.loc[r["run"], "predicted"]], "x", color=line.get_color())
        ax.set(xscale="log", xlabel="tokens seen", ylabel="training loss", title="Loss curves (x: forecast)")
        fig.tight_layout()
        paths.append(_save(fig, out / "lm_curves.png"))
    return paths


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------

@dataclass
class LMStudyResult:
    preset: LMStudyPreset
    study: str
    sweep: Any  # scalinglab.sweep.engine.SweepSummary
    analysis: LMStudyAnalysis
    files: list[Path]
    wall_s: float

    def describe(self) -> str:
        head = f"study {self.study}: {self.sweep.describe()}"
        return "\n".join([head, summary_text(self.analysis),
                          "files: " + ", ".join(str(p) for p in self.files)])


def run_lm_study(preset: str = "quick", *, db: str | Path = "runs.db", out: str | Path | None = None,
                 workers: int = 2, executor: str = "local", address: str | None = None,
                 progress: bool = True, overrides: dict | None = None) -> LMStudyResult:
    """Run (or resume) the preset's runs into ``db``, fit, and write ``lm_study.json`` and plots to ``out``."""
    from scalinglab.store import RunStore
    from scalinglab.sweep.engine import run_sweep

    if workers < 0:
        raise ConfigError(f"workers = {workers} is invalid: must be 0 (in this process) or more")
    started = time.perf_counter()
    pre = get_preset(preset, overrides)
    from scalinglab.data.text import text_files

    text_files(pre.run.get("corpus", "shakespeare"))  # a bad --corpus fails here, not in every run
    configs = design(pre)
    name = study_name(pre)
    out_dir = Path(out) if out is not None else Path(f"study-lm-{pre.name}")
    with RunStore(db) as store:
        summary = run_sweep(store, name, FAMILY, configs, workers=workers, executor=executor,
                            address=address, progress=progress,
                            info={"preset": pre.to_dict(), "design": "isoflop+grid" if pre.grid_tokens else "isoflop"})
        runs = store.runs(study=name, status="complete")
    analysis = analyse(runs, pre)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = plot_study(analysis, out_dir)
    report = out_dir / "lm_study.json"
    report.write_text(json.dumps({"study": name, **analysis.to_dict()}, indent=1, default=_json_default))
    (out_dir / "lm_summary.txt").write_text(summary_text(analysis) + "\n")
    files = [report, out_dir / "lm_summary.txt", *files]
    return LMStudyResult(preset=pre, study=name, sweep=summary, analysis=analysis, files=files,
                         wall_s=time.perf_counter() - started)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, pd.DataFrame):
        return json.loads(o.to_json(orient="records"))
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
