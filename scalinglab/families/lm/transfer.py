"""Transfer from English (Shakespeare) to Python code: effective data transferred, at toy scale.

Hernandez et al. 2021 ("Scaling Laws for Transfer", arXiv:2102.01293)
measure pre-training in fine-tuning tokens: a model pre-trained on text and
fine-tuned on D_F tokens of code reaches a loss that the same model trained
from scratch on code reaches only with D_E tokens; the *effective data
transferred* is D_T = D_E - D_F (Sec. 2, Fig. 1). They fit
D_T = k D_F^alpha N^beta with N the non-embedding parameters (eq. 1.1) and
report alpha = 0.18, beta = 0.38 from text to Python (Sec. 3, Fig. 3).

The study (``run_transfer_study``) trains, per size: one Shakespeare run that
saves its final state, fine-tunes of it on held-out-split stdlib code
(:mod:`scalinglab.data.code`, the Shakespeare tokenizer) at several D_F, and
from-scratch code runs at the same D_F and beyond. Per size, the from-scratch
losses are fitted with L(D) = E + A D^-alpha and inverted at each fine-tuned
loss to give D_E; a fine-tuned loss below that fit's E has no finite D_E and
is left out of the D_T fit (and counted). Intervals: a run-level bootstrap
of the log-linear fit. Every run also reports its loss on the other
distribution, so ``two_distribution`` fits code loss against Shakespeare
loss over the pre-training runs (Kaplan et al. 2020, Sec. 3.2.2: a roughly
constant offset).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.data.code import STDLIB
from scalinglab.errors import ConfigError, FitError
from scalinglab.families.lm.model import param_counts
from scalinglab.families.lm.train import FAMILY, LMRunConfig
from scalinglab.store import run_key

HERNANDEZ2021_TEXT_TO_PYTHON = {"alpha": 0.18, "beta": 0.38}  # Hernandez et al. 2021, Sec. 3


@dataclass(frozen=True, kw_only=True)
class TransferPreset:
    name: str
    sizes: tuple[str, ...]
    pretrain_tokens_per_param: float  # Shakespeare tokens per total parameter
    finetune_tokens: tuple[float, ...]  # D_F
    scratch_tokens: tuple[float, ...]  # from-scratch code budgets (cover the D_E the fine-tunes reach)
    run: dict = field(default_factory=dict)
    seed: int = 0
    bootstrap: int = 200
    note: str = ""


_RUN = {"context": 64, "batch_size": 8, "noise_splits": 2, "vocab_size": 512, "eval_tokens": 8192,
        "precision": "fp32"}
PRESETS = {
    "smoke": TransferPreset(name="smoke", sizes=("d16-l1", "d24-l1", "d32-l1"), pretrain_tokens_per_param=4,
                            finetune_tokens=(4e3, 8e3), scratch_tokens=(4e3, 8e3, 1.6e4, 3.2e4),
                            run={**_RUN, "context": 32, "eval_tokens": 1024}, bootstrap=20,
                            note="pipeline check only; the numbers mean nothing"),
    "quick": TransferPreset(name="quick", sizes=("d16-l1", "d24-l1", "d32-l1", "d48-l1"), pretrain_tokens_per_param=40,
                            finetune_tokens=(1.6e4, 6.4e4, 2.56e5), scratch_tokens=(1.6e4, 6.4e4, 2.56e5, 1.024e6),
                            run=_RUN),
}


def design(preset: TransferPreset) -> tuple[list[dict], list[dict]]:
    """(pre-training runs, then fine-tunes and from-scratch code runs): the second list needs the first."""
    pre, later = [], []
    for size in preset.sizes:
        base = {**preset.run, "size": size, "seed": preset.seed}
        cfg = LMRunConfig.from_dict({**base, "tokens": 1})
        n_total = param_counts(cfg.model_config())["total"]
        tokens = float(f"{preset.pretrain_tokens_per_param * n_total:.4g}")
        steps = LMRunConfig.from_dict({**base, "tokens": tokens}).steps
        p = {**base, "tokens": tokens, "checkpoint_steps": [steps]}
        pre.append(p)
        code = {**base, "corpus": STDLIB, "tokenizer_corpus": base.get("corpus", "shakespeare")}
        later += [{**code, "tokens": float(d), "init_from": run_key(FAMILY.name, p), "init_step": steps}
                  for d in preset.finetune_tokens]
        later += [{**code, "tokens": float(d)} for d in preset.scratch_tokens]
    for c in pre + later:
        LMRunConfig.from_dict(c)
    return pre, later


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per complete run: size, N (non-embedding), D, loss on its own validation set and on the other."""
    rows = []
    for _, r in runs.iterrows():
        m = r["metrics"]
        role = "pretrain" if m["config"]["corpus"] != STDLIB else "finetune" if m.get("init_from") else "scratch"
        rows.append({"run": r["key"], "size": r["size"], "role": role, "N": float(m["params_non_embedding"]),
                     "N_total": float(r["params"]), "D": float(r["examples"]), "loss": float(r["val_loss"]),
                     "second_loss": m.get("second_val_loss")})
    return pd.DataFrame(rows)


def effective_data(table: pd.DataFrame) -> pd.DataFrame:
    """Per fine-tune: D_E from its size's from-scratch law L(D) = E + A D^-alpha, and D_T = D_E - D_F."""
    from scalinglab.fit.parametric import PowerLawFit

    out = []
    for size, g in table.groupby("size", sort=False):
        scratch, tuned = g[g["role"] == "scratch"], g[g["role"] == "finetune"]
        if len(scratch) < 4 or tuned.empty:
            continue
        fit = PowerLawFit(x="D").fit(scratch)
        E, A, alpha = fit.params_["E"], fit.params_["A"], fit.params_["alpha"]
        for _, r in tuned.iterrows():
            gap = r["loss"] - E
            d_e = (A / gap) ** (1.0 / alpha) if gap > 0 else math.inf
            out.append({"size": size, "N": r["N"], "D_F": r["D"], "loss": r["loss"], "scratch_E": E,
                        "scratch_A": A, "scratch_alpha": alpha, "D_E": d_e, "D_T": d_e - r["D"]})
    return pd.DataFrame(out)


def _loglinear(df: pd.DataFrame) -> dict[str, float]:
    ok = df[np.isfinite(df["D_T"]) & (df["D_T"] > 0)] if len(df) else df
    if len(ok) < 4:
        raise FitError(f"only {len(ok)} fine-tunes have a finite positive D_T; the fit needs 4")
    X = np.column_stack([np.ones(len(ok)), np.log(ok["D_F"]), np.log(ok["N"])])
    coef, *_ = np.linalg.lstsq(X, np.log(ok["D_T"].to_numpy(float)), rcond=None)
    return {"k": float(math.exp(coef[0])), "alpha": float(coef[1]), "beta": float(coef[2])}


def fit_transfer(dt: pd.DataFrame, *, n_resamples: int = 200) -> dict:
    """D_T = k D_F^alpha N^beta by least squares in logs, with a run-level bootstrap (95%)."""
    from scalinglab.fit.bootstrap import bootstrap_statistic

    est = _loglinear(dt)
    boot = bootstrap_statistic(_loglinear, dt.reset_index(drop=True), n_resamples=n_resamples, cluster=None)
    usable = np.isfinite(dt["D_T"]) & (dt["D_T"] > 0)
    return {**est, "ci": {k: list(boot.ci[k]) for k in est}, "n_used": int(usable.sum()),
            "n_left_out": int((~usable).sum()), "n_failed_resamples": boot.n_failed,
            "published": HERNANDEZ2021_TEXT_TO_PYTHON}


def two_distribution(table: pd.DataFrame) -> dict:
    """Code loss against Shakespeare loss over the Shakespeare-trained runs: slope, intercept, mean offset."""
    pre = table[(table["role"] == "pretrain") & table["second_loss"].notna()]
    if len(pre) < 2:
        return {"n": int(len(pre))}
    slope, icpt = np.polyfit(pre["loss"], pre["second_loss"].astype(float), 1)
    return {"n": int(len(pre)), "slope": float(slope), "intercept": float(icpt),
            "mean_offset": float((pre["second_loss"] - pre["loss"]).mean())}


def get_transfer_preset(preset: "str | TransferPreset") -> TransferPreset:
    if isinstance(preset, TransferPreset):
        return preset
    if preset not in PRESETS:
        raise ConfigError(f"unknown transfer preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset]


def transfer_design(preset: "str | TransferPreset"):
    """The study's design: pre-training runs, then (a second phase) fine-tunes and from-scratch code runs.

    ``corpus`` is the variant key, so the Shakespeare runs and the code runs
    are analysed as two groups (the fine-tunes are no points of a scaling law:
    :meth:`~scalinglab.families.lm.train.LMFamily.point_runs` drops them), and
    never fitted jointly: their losses are on different distributions.
    """
    from scalinglab.studies.design import Design

    pre = get_transfer_preset(preset)
    first, second = design(pre)
    return Design(configs=[], phases=[first, second], variant_keys=("corpus",), compare_variants=False,
                  defaults={"corpus": "shakespeare", "tokenizer_corpus": "shakespeare"},
                  description={"transfer_preset": asdict(pre), "design": "transfer"})


def transfer_analysis(runs: pd.DataFrame, *, n_resamples: int = 200) -> dict:
    """From a transfer study's runs: the runs table, D_T per fine-tune, the D_T fit and the two-distribution relation.

    What the report's transfer figures show and ``transfer.json`` holds; a fit
    the runs cannot support gives ``{"error": ...}`` in its place.
    """
    done = runs[runs["status"] == "complete"]
    table = runs_table(done)
    if table.empty or not (table["role"] == "finetune").any():
        raise FitError("the study has no complete fine-tuning runs; it is not a transfer study")
    dt = effective_data(table)
    result = {"runs": json.loads(table.to_json(orient="records")),
              "effective_data": json.loads(dt.replace([np.inf], np.nan).to_json(orient="records")),
              "two_distribution": two_distribution(table)}
    try:
        result["transfer_fit"] = fit_transfer(dt, n_resamples=n_resamples)
    except FitError as exc:
        result["transfer_fit"] = {"error": str(exc)}
    return result


def run_transfer_study(preset: "str | TransferPreset" = "quick", *, db: str | Path = "runs.db",
                       out: str | Path | None = None, report: bool = True, **options):
    """Train (or resume) the preset into ``db`` through the study pipeline; returns its ``StudyRun``.

    The pipeline writes ``analysis.json`` and the report (with the transfer
    figures of :mod:`scalinglab.families.lm.report`); this adds
    ``transfer.json`` (:func:`transfer_analysis`) beside them. ``options`` as
    :func:`~scalinglab.studies.pipeline.run_study` (workers, executor, progress, ...).
    """
    from scalinglab.safe_io import write_text_atomic
    from scalinglab.studies.load import load_study
    from scalinglab.studies.pipeline import run_study

    pre = get_transfer_preset(preset)
    name = f"lm-transfer-{pre.name}"
    result = run_study(FAMILY, transfer_design(pre), db=db, name=name, out=out or f"study-{name}", report=report,
                       **{"n_resamples": pre.bootstrap, **options})
    transfer = transfer_analysis(load_study(db, name).runs, n_resamples=pre.bootstrap)
    write_text_atomic(result.out, "transfer.json", json.dumps({"study": name, "preset": asdict(pre), **transfer},
                                                              indent=1) + "\n")
    return result
