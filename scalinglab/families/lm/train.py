"""Training a transformer language model to a token budget: the ``lm`` sweep family.

One run = one named model size trained on ``tokens`` tokens with its own
schedule: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), linear warmup
over the first ``warmup`` share of steps, then a cosine decay that reaches
its floor (``min_lr_ratio`` x peak) exactly at the last step. Every budget
gets its own schedule, as Hoffmann et al. (2022, Sec. 3.1 and App. B) require:
reading losses off a truncated longer cosine run overestimates them.

Learning rate. The peak LR scales as 1/d_model: ``lr = LR_TIMES_WIDTH /
d_model`` unless the config sets ``lr``. For Adam the update of a hidden
matrix should shrink like 1/fan_in to keep the change of its outputs the
same across widths (Yang et al. 2022, muP, Table 3); we apply the rule to
every parameter, a simplification. The constant was picked by a small LR
sweep at two widths (docs/lm-scaling.md).

Recorded per run: the validation loss and next-token accuracy on a fixed
set of held-out tokens (the first ``eval_tokens`` of the validation stream,
the same for every run of a corpus), ~40 points of the training loss curve,
and the gradient noise scale B_simple (:mod:`scalinglab.core.noise_scale`),
measured on every step by splitting the batch into ``noise_splits`` small
batches, averaged per curve segment and over the last quarter of training.

Speed. ``precision="bf16"`` runs the forward and backward under CPU bf16
autocast (fp32 master weights and optimizer). On this machine's AVX512-BF16
CPU it trains 1.2x (d32) to 2x (d192) faster than fp32 (bench/lm_bf16.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from scalinglab.data.tokens import TOKENIZERS, TokenData, load_tokens
from scalinglab.errors import ConfigError, DataError
from scalinglab.families.lm.model import SIZES, Transformer, flops_per_token, param_counts, size_config
from scalinglab.sweep.family import RunResult, config_from_dict
from scalinglab.core.noise_scale import NoiseScale, accumulate_gradients

LR_TIMES_WIDTH = 0.25  # peak LR = LR_TIMES_WIDTH / d_model (0.0039 at d=64, 0.0013 at d=192)
CURVE_POINTS = 40  # training-loss points recorded per run
EVAL_BATCH = 32  # sequences per evaluation forward pass


@dataclass(kw_only=True, frozen=True)
class LMRunConfig:
    size: str  # a name from scalinglab.families.lm.model.SIZES, e.g. "d64-l2"
    tokens: float  # training budget D in tokens (rounded to whole steps)
    seed: int = 0  # init and data order
    lr: float | None = None  # peak AdamW LR; None: LR_TIMES_WIDTH / d_model
    batch_size: int = 16  # sequences per step
    context: int = 128  # tokens per sequence
    corpus: str = "shakespeare"  # "shakespeare", a text file or a folder
    tokenizer: str = "bpe"  # "bpe" (trained on the training split) or "bytes"
    vocab_size: int = 512  # BPE vocabulary (ignored for bytes: 256)
    val_fraction: float = 0.1  # share of documents (or the final block) held out
    warmup: float = 0.05  # share of steps spent warming up linearly
    min_lr_ratio: float = 0.1  # LR floor / peak, reached exactly at the last step
    weight_decay: float = 0.1  # decoupled, on weight matrices and embeddings only
    grad_clip: float = 1.0  # global gradient-norm clip; 0 disables
    precision: str = "fp32"  # "fp32" or "bf16" (CPU autocast)
    eval_tokens: int = 65536  # held-out tokens scored at the end (fixed set)
    noise_splits: int = 4  # small batches per step for B_simple; 1 disables the measurement

    def __post_init__(self):
        pos_int = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1
        checks = [
            ("size", self.size in SIZES, f"one of {', '.join(SIZES)}"),
            ("tokens", isinstance(self.tokens, (int, float)) and math.isfinite(self.tokens) and self.tokens >= 1,
             "a positive number of tokens"),
            ("seed", isinstance(self.seed, int) and self.seed >= 0, "a non-negative integer"),
            ("lr", self.lr is None or (self.lr > 0 and math.isfinite(self.lr)), "empty or a positive number"),
            ("batch_size", pos_int(self.batch_size), "a positive integer"),
            ("context", pos_int(self.context), "a positive integer"),
            ("tokenizer", self.tokenizer in TOKENIZERS, f"one of {', '.join(TOKENIZERS)}"),
            ("vocab_size", pos_int(self.vocab_size), "a positive integer"),
            ("val_fraction", 0 < self.val_fraction < 0.5, "in (0, 0.5)"),
            ("warmup", 0 <= self.warmup < 1, "in [0, 1)"),
            ("min_lr_ratio", 0 <= self.min_lr_ratio <= 1, "in [0, 1]"),
            ("weight_decay", self.weight_decay >= 0, "non-negative"),
            ("grad_clip", self.grad_clip >= 0, "non-negative (0 disables clipping)"),
            ("precision", self.precision in ("fp32", "bf16"), "'fp32' or 'bf16'"),
            ("eval_tokens", pos_int(self.eval_tokens), "a positive integer"),
            ("noise_splits", pos_int(self.noise_splits), "a positive integer"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"LM run setting {name} = {getattr(self, name)!r} is invalid: must be {allowed}")
        if self.batch_size % self.noise_splits:
            raise ConfigError(f"LM run setting batch_size ({self.batch_size}) must be a multiple of "
                              f"noise_splits ({self.noise_splits})")

    @classmethod
    def from_dict(cls, config: dict) -> "LMRunConfig":
        return config_from_dict(cls, config, "LM")

    @property
    def effective_vocab(self) -> int:
        return 256 if self.tokenizer == "bytes" else self.vocab_size

    def model_config(self, vocab_size: int | None = None):
        return size_config(self.size, vocab_size=vocab_size or self.effective_vocab, context=self.context)

    @property
    def steps(self) -> int:
        """Optimizer steps: the budget in whole batches (at least 2, so warmup and decay both exist)."""
        return max(2, round(self.tokens / (self.batch_size * self.context)))

    @property
    def tokens_trained(self) -> int:
        return self.steps * self.batch_size * self.context

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else LR_TIMES_WIDTH / SIZES[self.size][1]


# ---------------------------------------------------------------------------
# Schedule
# ---------------------------------------------------------------------------

def warmup_steps(total_steps: int, warmup: float) -> int:
    """Steps of linear warmup: at least 1, and at most total_steps - 1 so decay has a step."""
    return min(max(1, round(warmup * total_steps)), max(1, total_steps - 1))


def lr_at(step: int, *, total_steps: int, peak: float, warmup: int, floor: float) -> float:
    """LR used for the update of ``step`` (0-based).

    Steps 0 .. warmup-1 rise linearly to ``peak`` (reached at step warmup-1);
    from there a half cosine falls to ``floor``, reached exactly at the last
    step, total_steps - 1.
    """
    if not 0 <= step < total_steps:
        raise ValueError(f"step {step} is outside 0..{total_steps - 1}")
    if total_steps == 1:
        return floor
    if step < warmup - 1:
        return peak * (step + 1) / warmup
    span = (total_steps - 1) - (warmup - 1)
    progress = (step - (warmup - 1)) / span  # 0 at the peak, exactly 1 at the last step
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ---------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------

class TokenBatches:
    """Training sequences in epochs: each epoch cuts the stream into windows of
    ``context + 1`` tokens at a random offset and visits them in a random order."""

    def __init__(self, tokens: np.ndarray, *, context: int, batch_size: int, seed: int):
        if len(tokens) < batch_size * context + context + 1:
            raise DataError(f"training stream has {len(tokens)} tokens, fewer than one batch of "
                            f"{batch_size} x {context}; use a bigger corpus or smaller batch/context")
        self.tokens, self.T, self.B = tokens, context, batch_size
        self.rng = np.random.default_rng(seed)
        self.epoch, self.order, self.pos, self.offset = -1, np.zeros(0, np.int64), 0, 0
        self.span = np.arange(context + 1)

    def _new_epoch(self) -> None:
        self.epoch += 1
        self.offset = int(self.rng.integers(self.T)) if self.epoch else 0
        n_windows = (len(self.tokens) - 1 - self.offset) // self.T
        self.order, self.pos = self.rng.permutation(n_windows), 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """x, y: (B, T) int64, y shifted by one token."""
        if self.pos + self.B > len(self.order):
            self._new_epoch()
        starts = self.offset + self.order[self.pos:self.pos + self.B] * self.T
        self.pos += self.B
        window = torch.from_numpy(self.tokens[starts[:, None] + self.span].astype(np.int64))  # (B, T+1)
        return window[:, :-1], window[:, 1:]


def eval_windows(val: np.ndarray, *, context: int, eval_tokens: int) -> torch.Tensor:
    """The fixed validation set: consecutive non-overlapping windows from the start of the stream."""
    n = min(eval_tokens // context, (len(val) - 1) // context)
    if n < 1:
        raise DataError(f"validation stream has {len(val)} tokens, fewer than one window of {context}; "
                        "use a bigger corpus or a larger val_fraction")
    starts = np.arange(n) * context
    return torch.from_numpy(val[starts[:, None] + np.arange(context + 1)].astype(np.int64))


@torch.no_grad()
def evaluate(model: Transformer, windows: torch.Tensor, precision: str) -> tuple[float, float]:
    """Mean next-token cross-entropy (nats) and top-1 accuracy over all positions of ``windows``."""
    model.eval()
    total, correct, count = 0.0, 0, 0
    for i in range(0, len(windows), EVAL_BATCH):
        w = windows[i:i + EVAL_BATCH]
        with _autocast(precision):
            logits, _ = model(w[:, :-1])
        logits = logits.float()
        y = w[:, 1:]
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
        correct += (logits.argmax(-1) == y).sum().item()
        count += y.numel()
    model.train()
    return total / count, correct / count


def _autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def make_optimizer(model: Transformer, cfg: LMRunConfig) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.peak_lr, betas=(0.9, 0.95), eps=1e-8, fused=True)


# ---------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------

def train_lm(cfg: LMRunConfig, data: TokenData) -> RunResult:
    """Train one model to its token budget and score it on the held-out tokens."""
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    mcfg = cfg.model_config(data.vocab_size)
    model = Transformer(mcfg)
    opt = make_optimizer(model, cfg)
    batches = TokenBatches(data.train, context=cfg.context, batch_size=cfg.batch_size, seed=cfg.seed)
    windows = eval_windows(data.val, context=cfg.context, eval_tokens=cfg.eval_tokens)

    steps, seq_tokens = cfg.steps, cfg.batch_size * cfg.context
    warm = warmup_steps(steps, cfg.warmup)
    floor = cfg.min_lr_ratio * cfg.peak_lr
    small = cfg.batch_size // cfg.noise_splits
    marks = np.linspace(0, steps, min(CURVE_POINTS, steps) + 1).round().astype(int)

    def loss_fn(m, batch):
        x, y = batch
        with _autocast(cfg.precision):
            _, loss = m(x, y)
        return loss

    curve, noise_curve, lrs = [], [], []
    run_noise, tail_start = NoiseScale(), int(0.75 * steps)
    segment_noise, window, diverged_at = NoiseScale(), [], None
    seg = 1
    for step in range(steps):
        lr = lr_at(step, total_steps=steps, peak=cfg.peak_lr, warmup=warm, floor=floor)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = batches.next()
        parts = [(x[i:i + small], y[i:i + small]) for i in range(0, cfg.batch_size, small)]
        loss, sample = accumulate_gradients(model, loss_fn, parts)
        if not math.isfinite(loss):
            diverged_at = step
            break
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        window.append(loss)
        if sample is not None:
            segment_noise.update(sample)
            if step >= tail_start:
                run_noise.update(sample)
        if step + 1 == marks[seg]:
            tokens_seen = (step + 1) * seq_tokens
            curve.append([tokens_seen, float(np.mean(window))])
            noise_curve.append([tokens_seen, float(np.mean(window)), segment_noise.b_simple * cfg.context])
            lrs.append([tokens_seen, lr])
            window, segment_noise, seg = [], NoiseScale(), seg + 1
    train_s = time.perf_counter() - started

    counts, fpt = param_counts(mcfg), flops_per_token(mcfg)
    tokens_seen = cfg.tokens_trained if diverged_at is None else diverged_at * seq_tokens
    if diverged_at is None:
        val_loss, val_acc = evaluate(model, windows, cfg.precision)
        if not math.isfinite(val_loss):
            val_loss, val_acc = math.nan, None
    else:
        val_loss, val_acc = math.nan, None
    b_simple = run_noise.b_simple
    return RunResult(
        params=counts["total"],
        flops=float(fpt["train"] * tokens_seen),
        examples=int(tokens_seen),
        val_loss=val_loss,
        val_acc=val_acc,
        curve=curve,
        metrics={
            "params_total": counts["total"],
            "params_non_embedding": counts["non_embedding"],
            "params_kaplan": counts["kaplan_approx"],
            "flops_per_token": fpt["train"],
            "flops_6nd": float(fpt["six_n_total"] * tokens_seen),
            "flops_6nd_non_embedding": float(fpt["six_n_non_embedding"] * tokens_seen),
            "lr": cfg.peak_lr,
            "lr_floor": floor,
            "lr_curve": lrs,
            "steps": steps,
            "warmup_steps": warm,
            "epochs": tokens_seen / len(data.train),
            "tokens_per_param": tokens_seen / counts["total"],
            "noise_scale": b_simple * cfg.context,  # tokens, Kaplan's unit
            "noise_scale_sequences": b_simple,
            "noise_curve": noise_curve,  # [[tokens_seen, train_loss, B_simple in tokens], ...]
            "eval_tokens": int(windows[:, 1:].numel()),
            "train_tokens_available": int(len(data.train)),
            "vocab_size": data.vocab_size,
            "precision": cfg.precision,
            "tokens_per_s": tokens_seen / train_s if train_s > 0 else None,
            "diverged_at_step": diverged_at,
            "config": asdict(cfg),
        },
    )


class LMFamily:
    """The sweep engine's view of the transformer language-model family.

    ``params`` (the headline N) is the *total* parameter count, as in
    Hoffmann et al. (2022); the non-embedding count Kaplan et al. (2020) use is
    in ``metrics["params_non_embedding"]``. ``flops`` is the exact matmul count
    of training (attention and output layer included), not 6ND.
    """

    name = "lm"

    def config(self, config: dict) -> LMRunConfig:
        return LMRunConfig.from_dict(config)

    def cost(self, config: dict) -> float:
        cfg = self.config(config)
        fpt = flops_per_token(cfg.model_config())
        return float(fpt["train"] * cfg.tokens_trained + fpt["forward"] * cfg.eval_tokens)

    def data_key(self, config: dict):
        cfg = self.config(config)
        return (cfg.corpus, cfg.tokenizer, cfg.effective_vocab, cfg.val_fraction)

    def load_data(self, config: dict) -> TokenData:
        cfg = self.config(config)
        return load_tokens(cfg.corpus, tokenizer=cfg.tokenizer, vocab_size=cfg.vocab_size,
                           val_fraction=cfg.val_fraction)

    def train(self, config: dict, data: TokenData) -> RunResult:
        return train_lm(self.config(config), data)


FAMILY = LMFamily()
