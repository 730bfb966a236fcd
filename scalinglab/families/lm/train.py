"""Training a transformer language model to a token budget: the ``lm`` sweep family.

One run = one named model size trained on ``tokens`` tokens with its own
schedule: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), linear warmup
over the first ``warmup`` share of steps, then a cosine decay that reaches
its floor (``min_lr_ratio`` x peak) exactly at the last step. Every budget
gets its own schedule, as Hoffmann et al. (2022, Sec. 3.1 and App. B) require:
reading losses off a truncated longer cosine run overestimates them.

WSD runs (``schedule="wsd"``, :mod:`scalinglab.families.lm.schedule`) hold the
peak and cool down over the last ``cooldown`` share of steps. A WSD *trunk*
saves checkpoints after its ``checkpoint_steps`` (resuming from the last one
if it was killed); a *branched* run names the trunk (``parent``, its run key)
and ``branch_step``, loads that checkpoint and trains only the cooldown, so
its own ``flops`` are the cooldown's and ``metrics["trunk_flops"]`` the
trunk's share; ``metrics["model_flops"]`` is what the final model cost in
all (the C of a scaling fit). Every run records the unique training tokens
it saw and its epochs, for the data-constrained law (Muennighoff et al. 2023),
and its loss on a second distribution, held-out Python standard-library code
(:mod:`scalinglab.data.code`), the two-distribution relation of Kaplan et al.
(2020, Sec. 3.2.2).

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

import functools
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from scalinglab.data.code import STDLIB, code_tokens
from scalinglab.data.tokens import TOKENIZERS, TokenData, load_tokens
from scalinglab.errors import ConfigError, DataError
from scalinglab.families.lm.model import SIZES, Transformer, flops_per_token, param_counts, size_config
from scalinglab.families.lm.schedule import COOLDOWN_SHAPES, SCHEDULES, lr_at, warmup_steps, wsd_lr_at
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
    schedule: str = "cosine"  # "cosine" (per budget) or "wsd" (warmup, constant, cooldown)
    cooldown: float = 0.2  # wsd: share of steps in the cooldown (0: constant to the end, a trunk)
    cooldown_shape: str = "1-sqrt"  # wsd: "1-sqrt" or "linear" (Hägele et al. 2024)
    warmup_steps: int | None = None  # warmup in steps, overriding the share (wsd trunks and branches share it)
    checkpoint_steps: tuple[int, ...] = ()  # save the training state after these steps (wsd trunks, pre-training)
    parent: str | None = None  # wsd branch: run key of the trunk it starts from
    branch_step: int | None = None  # wsd branch: the trunk checkpoint (steps done) it starts from
    second_eval: str = "python-stdlib"  # also score on this held-out distribution ("" for none)
    init_from: str | None = None  # fine-tuning: run key of the run whose checkpoint gives the initial weights
    init_step: int | None = None  # fine-tuning: that checkpoint's step
    tokenizer_corpus: str = "shakespeare"  # corpus "python-stdlib": whose tokenizer encodes the code
    max_unique_tokens: int | None = None  # train on only the first this many tokens of the stream (repeated data)

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
            ("schedule", self.schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
            ("cooldown", 0 <= self.cooldown < 1, "in [0, 1)"),
            ("cooldown_shape", self.cooldown_shape in COOLDOWN_SHAPES, f"one of {', '.join(COOLDOWN_SHAPES)}"),
            ("warmup_steps", self.warmup_steps is None or pos_int(self.warmup_steps), "empty or a positive integer"),
            ("checkpoint_steps", isinstance(self.checkpoint_steps, (list, tuple))
             and all(pos_int(s) for s in self.checkpoint_steps), "a list of positive step counts"),
            ("parent", self.parent is None or (isinstance(self.parent, str) and self.parent.isalnum()),
             "empty or a run key"),
            ("branch_step", self.branch_step is None or pos_int(self.branch_step), "empty or a positive integer"),
            ("second_eval", self.second_eval in ("", STDLIB), f"'{STDLIB}' or empty"),
            ("init_from", self.init_from is None or (isinstance(self.init_from, str) and self.init_from.isalnum()),
             "empty or a run key"),
            ("init_step", self.init_step is None or pos_int(self.init_step), "empty or a positive integer"),
            ("max_unique_tokens", self.max_unique_tokens is None or pos_int(self.max_unique_tokens),
             "empty or a positive integer"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"LM run setting {name} = {getattr(self, name)!r} is invalid: must be {allowed}")
        if self.batch_size % self.noise_splits:
            raise ConfigError(f"LM run setting batch_size ({self.batch_size}) must be a multiple of "
                              f"noise_splits ({self.noise_splits})")
        object.__setattr__(self, "checkpoint_steps", tuple(sorted(set(self.checkpoint_steps))))
        if (self.parent is None) != (self.branch_step is None):
            raise ConfigError("LM run settings parent and branch_step go together: give both (a branched "
                              "cooldown) or neither")
        if self.parent is not None and self.schedule != "wsd":
            raise ConfigError("LM run setting parent needs schedule = 'wsd'")
        if (self.init_from is None) != (self.init_step is None):
            raise ConfigError("LM run settings init_from and init_step go together: give both (fine-tuning) or neither")
        if self.init_from is not None and self.parent is not None:
            raise ConfigError("an LM run either branches from a trunk (parent) or fine-tunes (init_from), not both")
        if self.parent is not None and not self.branch_step < self.steps:
            raise ConfigError(f"LM run setting branch_step ({self.branch_step}) must be below the run's "
                              f"{self.steps} steps: the branch trains the steps after it")
        if self.checkpoint_steps and self.checkpoint_steps[-1] > self.steps:
            raise ConfigError(f"LM run setting checkpoint_steps goes to {self.checkpoint_steps[-1]}, beyond the "
                              f"run's {self.steps} steps")

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

    @property
    def warmup_count(self) -> int:
        """Warmup steps: ``warmup_steps`` if set (at most steps - 1), else the ``warmup`` share."""
        if self.warmup_steps is not None:
            return min(self.warmup_steps, max(1, self.steps - 1))
        return warmup_steps(self.steps, self.warmup)

    @property
    def cooldown_steps(self) -> int:
        """WSD: steps of the cooldown (a branch cools down over every step after its branch step)."""
        if self.schedule != "wsd":
            return 0
        if self.parent is not None:
            return self.steps - self.branch_step
        return min(round(self.cooldown * self.steps), self.steps - 1)

    @property
    def first_step(self) -> int:
        """The step this run's own training starts at: its branch step, or 0."""
        return self.branch_step or 0

    def lr_at_step(self, step: int) -> float:
        """The LR of the update of ``step`` (0-based) under the run's schedule."""
        peak, floor, warm = self.peak_lr, self.min_lr_ratio * self.peak_lr, self.warmup_count
        if self.schedule == "wsd":
            return wsd_lr_at(step, total_steps=self.steps, peak=peak, warmup=warm, floor=floor,
                             cooldown_steps=self.cooldown_steps, shape=self.cooldown_shape)
        return lr_at(step, total_steps=self.steps, peak=peak, warmup=warm, floor=floor)


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
        self.seen = np.zeros(len(tokens), dtype=bool)  # positions any window has covered

    @property
    def unique_tokens(self) -> int:
        """Distinct positions of the training stream seen so far (U_D of Muennighoff et al. 2023)."""
        return int(self.seen.sum())

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "epoch": self.epoch, "order": self.order.copy(),
                "pos": self.pos, "offset": self.offset, "seen": np.packbits(self.seen), "n": len(self.seen)}

    def load_state_dict(self, state: dict) -> None:
        if state["n"] != len(self.tokens):
            raise DataError(f"checkpoint was trained on a stream of {state['n']} tokens, this one has "
                            f"{len(self.tokens)}; the corpus or tokenizer changed: re-run the trunk")
        self.rng.bit_generator.state = state["rng"]
        self.epoch, self.order, self.pos, self.offset = state["epoch"], state["order"], state["pos"], state["offset"]
        self.seen = np.unpackbits(state["seen"], count=state["n"]).astype(bool)

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
        index = starts[:, None] + self.span
        self.seen[index] = True
        window = torch.from_numpy(self.tokens[index].astype(np.int64))  # (B, T+1)
        return window[:, :-1], window[:, 1:]


def eval_windows(val: np.ndarray, *, context: int, eval_tokens: int) -> torch.Tensor:
    """The fixed validation set: consecutive non-overlapping windows from the start of the stream."""
    n = min(eval_tokens // context, (len(val) - 1) // context)
    if n < 1:
        raise DataError(f"validation stream has {len(val)} tokens, fewer than one window of {context}; "
                        "use a bigger corpus or a larger val_fraction")
    starts = np.arange(n) * context
    return torch.from_numpy(val[starts[:, None] + np.arange(context + 1)].astype(np.int64))


@functools.lru_cache(maxsize=8)
def _held_out_code(tokenizer: str, vocab_size: int, corpus: str, val_fraction: float) -> np.ndarray:
    return code_tokens("val", tokenizer=tokenizer, vocab_size=vocab_size, corpus=corpus, val_fraction=val_fraction)


def _second_eval_windows(cfg: "LMRunConfig") -> torch.Tensor:
    """The fixed windows of the second distribution (held-out stdlib code in the run's tokenizer)."""
    corpus = cfg.tokenizer_corpus if cfg.corpus == STDLIB else cfg.corpus  # whose tokenizer the model uses
    code = _held_out_code(cfg.tokenizer, cfg.vocab_size, corpus, cfg.val_fraction)
    return eval_windows(code, context=cfg.context, eval_tokens=cfg.eval_tokens)


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

# Settings a branch may set differently from its trunk: they act only after the branch step.
BRANCH_FREE = ("tokens", "cooldown", "cooldown_shape", "min_lr_ratio", "checkpoint_steps", "parent",
               "branch_step", "eval_tokens", "second_eval")


@dataclass
class _Progress:
    """What the loop accumulates besides model, optimizer and data order; carried in checkpoints."""

    curve: list = field(default_factory=list)  # [[tokens_seen, train_loss], ...]
    noise_curve: list = field(default_factory=list)  # [[tokens_seen, train_loss, B_simple in tokens], ...]
    lrs: list = field(default_factory=list)  # [[tokens_seen, lr], ...]
    window: list = field(default_factory=list)  # training losses since the last curve point
    segment_noise: NoiseScale = field(default_factory=NoiseScale)
    run_noise: NoiseScale = field(default_factory=NoiseScale)  # over the last quarter of training


def _training_state(model, opt, batches, progress, cfg: LMRunConfig, step: int, flops: float) -> dict:
    return {"config": asdict(cfg), "step": step, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "batches": batches.state_dict(), "torch_rng": torch.get_rng_state(), "progress": dict(vars(progress)),
            "flops": flops}


def _check_branch(cfg: LMRunConfig, trunk: LMRunConfig) -> None:
    """A branch must continue its trunk's run exactly: same settings up to the branch step."""
    mine, theirs = asdict(cfg), asdict(trunk)
    differ = [k for k in mine if k not in BRANCH_FREE and mine[k] != theirs[k]]
    if differ:
        k = differ[0]
        raise ConfigError(f"branched run differs from its trunk in {k} ({mine[k]!r} vs {theirs[k]!r}); only "
                          f"{', '.join(BRANCH_FREE)} may differ")
    if trunk.warmup_count != cfg.warmup_count:
        raise ConfigError(f"branched run warms up for {cfg.warmup_count} steps, its trunk for {trunk.warmup_count}; "
                          "set warmup_steps in both")
    if trunk.steps - trunk.cooldown_steps < cfg.branch_step:
        raise ConfigError(f"the trunk starts cooling down at step {trunk.steps - trunk.cooldown_steps}, before the "
                          f"branch step {cfg.branch_step}; trunks train at constant LR (cooldown = 0)")


def train_lm(cfg: LMRunConfig, data: TokenData, *, key: str | None = None) -> RunResult:
    """Train one model to its token budget and score it on the held-out tokens.

    ``key`` (the run's store key) names its checkpoint folder; WSD trunks need it.
    """
    from scalinglab.families.lm import checkpoint as ckpt

    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    mcfg = cfg.model_config(data.vocab_size)
    model = Transformer(mcfg)
    opt = make_optimizer(model, cfg)
    stream = data.train if cfg.max_unique_tokens is None else data.train[:cfg.max_unique_tokens]
    batches = TokenBatches(stream, context=cfg.context, batch_size=cfg.batch_size, seed=cfg.seed)
    windows = eval_windows(data.val, context=cfg.context, eval_tokens=cfg.eval_tokens)
    counts, fpt = param_counts(mcfg), flops_per_token(mcfg)
    steps, seq_tokens = cfg.steps, cfg.batch_size * cfg.context

    progress, start, trunk_flops = _Progress(), 0, 0.0
    if cfg.checkpoint_steps and key is None:
        raise ConfigError("a WSD trunk (checkpoint_steps) needs its run key to name its checkpoints; run it "
                          "through the sweep engine")
    resume = None
    if cfg.parent is not None:
        resume = ckpt.load_checkpoint(cfg.parent, cfg.branch_step)
        _check_branch(cfg, LMRunConfig.from_dict(resume["config"]))
    elif cfg.checkpoint_steps:
        last = ckpt.latest_checkpoint_step(key, steps)
        resume = ckpt.load_checkpoint(key, last) if last is not None else None
    if cfg.init_from is not None:  # fine-tuning: the pre-trained weights, a fresh optimizer, data and schedule
        init = ckpt.load_checkpoint(cfg.init_from, cfg.init_step)
        if init["model"]["wte.weight"].shape != model.wte.weight.shape or \
                LMRunConfig.from_dict(init["config"]).model_config() != cfg.model_config():
            raise ConfigError(f"run {cfg.init_from[:12]} is a different model ({init['config']['size']}, context "
                              f"{init['config']['context']}); fine-tune the same size, context and vocabulary")
        model.load_state_dict(init["model"])
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        batches.load_state_dict(resume["batches"])
        torch.set_rng_state(resume["torch_rng"])
        start = resume["step"]
        saved = resume["progress"]
        if cfg.parent is None:  # a trunk resuming: carry on exactly where it stopped
            progress = _Progress(**saved)
        else:  # a branch: the trunk's curve so far, fresh accumulators for the cooldown
            progress = _Progress(curve=saved["curve"], noise_curve=saved["noise_curve"], lrs=saved["lrs"])
            trunk_flops = float(resume["flops"])

    small = cfg.batch_size // cfg.noise_splits
    n_marks = min(CURVE_POINTS, steps - cfg.first_step)
    marks = set(np.linspace(cfg.first_step, steps, n_marks + 1).round().astype(int)[1:].tolist())
    tail_start = max(int(0.75 * steps), cfg.first_step)
    saves = set(cfg.checkpoint_steps)

    def loss_fn(m, batch):
        x, y = batch
        with _autocast(cfg.precision):
            _, loss = m(x, y)
        return loss

    diverged_at = None
    for step in range(start, steps):
        lr = cfg.lr_at_step(step)
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
        progress.window.append(loss)
        if sample is not None:
            progress.segment_noise.update(sample)
            if step >= tail_start:
                progress.run_noise.update(sample)
        if step + 1 in marks:
            tokens_seen = (step + 1) * seq_tokens
            mean = float(np.mean(progress.window))
            progress.curve.append([tokens_seen, mean])
            progress.noise_curve.append([tokens_seen, mean, progress.segment_noise.b_simple * cfg.context])
            progress.lrs.append([tokens_seen, lr])
            progress.window, progress.segment_noise = [], NoiseScale()
        if step + 1 in saves:
            own = float(fpt["train"] * (step + 1 - cfg.first_step) * seq_tokens)
            ckpt.save_checkpoint(_training_state(model, opt, batches, progress, cfg, step + 1, trunk_flops + own),
                                 key, step + 1)
    train_s = time.perf_counter() - started

    end = steps if diverged_at is None else diverged_at
    tokens_seen = end * seq_tokens
    own_flops = float(fpt["train"] * (end - cfg.first_step) * seq_tokens)
    if diverged_at is None:
        val_loss, val_acc = evaluate(model, windows, cfg.precision)
        if not math.isfinite(val_loss):
            val_loss, val_acc = math.nan, None
    else:
        val_loss, val_acc = math.nan, None
    second_loss = second_acc = None
    if cfg.second_eval and math.isfinite(val_loss):
        second_loss, second_acc = evaluate(model, _second_eval_windows(cfg), cfg.precision)
    b_simple = progress.run_noise.b_simple
    return RunResult(
        params=counts["total"],
        flops=own_flops,
        examples=int(tokens_seen),
        val_loss=val_loss,
        val_acc=val_acc,
        curve=progress.curve,
        metrics={
            "params_total": counts["total"],
            "params_non_embedding": counts["non_embedding"],
            "params_kaplan": counts["kaplan_approx"],
            "flops_per_token": fpt["train"],
            "flops_6nd": float(fpt["six_n_total"] * tokens_seen),
            "flops_6nd_non_embedding": float(fpt["six_n_non_embedding"] * tokens_seen),
            "model_flops": trunk_flops + own_flops,  # the final model's whole training (C of a fit)
            "trunk_flops": trunk_flops,  # a branch: its trunk's share, counted in the trunk's own run
            "parent": cfg.parent,
            "branch_step": cfg.branch_step,
            "schedule": cfg.schedule,
            "cooldown_steps": cfg.cooldown_steps,
            "role": ("branch" if cfg.parent else "finetune" if cfg.init_from else
                     "trunk" if cfg.checkpoint_steps and cfg.schedule == "wsd" and not cfg.cooldown_steps else "run"),
            "init_from": cfg.init_from,
            "resumed_from_step": start if cfg.parent is None and start else None,
            "lr": cfg.peak_lr,
            "lr_floor": cfg.min_lr_ratio * cfg.peak_lr,
            "lr_curve": progress.lrs,
            "steps": steps,
            "warmup_steps": cfg.warmup_count,
            "epochs": tokens_seen / len(stream),
            "unique_tokens": batches.unique_tokens,  # distinct training-stream positions seen (U_D)
            "repetitions": tokens_seen / max(1, batches.unique_tokens),
            "tokens_per_param": tokens_seen / counts["total"],
            "noise_scale": b_simple * cfg.context,  # tokens, Kaplan's unit
            "noise_scale_sequences": b_simple,
            "noise_curve": progress.noise_curve,
            "eval_tokens": int(windows[:, 1:].numel()),
            "train_tokens_available": int(len(stream)),
            "vocab_size": data.vocab_size,
            "precision": cfg.precision,
            "tokens_per_s": (end - start) * seq_tokens / train_s if train_s > 0 else None,
            "diverged_at_step": diverged_at,
            "second_eval": cfg.second_eval or None,  # the second held-out distribution (Kaplan et al. 2020, Sec. 3.2.2)
            "second_val_loss": second_loss,
            "second_val_acc": second_acc,
            "config": asdict(cfg),
        },
    )


class LMFamily:
    """The sweep engine's view of the transformer language-model family.

    ``params`` (the headline N) is the *total* parameter count, as in
    Hoffmann et al. (2022); the non-embedding count Kaplan et al. (2020) use is
    in ``metrics["params_non_embedding"]``. ``flops`` is the exact matmul count
    of training (attention and output layer included), not 6ND; for a branched
    WSD run, that of its cooldown only (``metrics["model_flops"]`` adds the trunk's).
    """

    name = "lm"

    def config(self, config: dict) -> LMRunConfig:
        return LMRunConfig.from_dict(config)

    def size(self, config: dict) -> tuple[int, int]:
        """(total parameters, tokens trained) of the run before training it: what adaptive studies plan with."""
        cfg = self.config(config)
        return param_counts(cfg.model_config())["total"], cfg.steps * cfg.batch_size * cfg.context

    def cost(self, config: dict) -> float:
        cfg = self.config(config)
        fpt = flops_per_token(cfg.model_config())
        own_tokens = (cfg.steps - cfg.first_step) * cfg.batch_size * cfg.context
        scored = cfg.eval_tokens * (2 if cfg.second_eval else 1)
        return float(fpt["train"] * own_tokens + fpt["forward"] * scored)

    def data_key(self, config: dict):
        cfg = self.config(config)
        return (cfg.corpus, cfg.tokenizer, cfg.effective_vocab, cfg.val_fraction,
                cfg.tokenizer_corpus if cfg.corpus == STDLIB else None)

    def load_data(self, config: dict) -> TokenData:
        cfg = self.config(config)
        if cfg.corpus == STDLIB:  # code, in the tokenizer of the corpus a model may be pre-trained on
            base = load_tokens(cfg.tokenizer_corpus, tokenizer=cfg.tokenizer, vocab_size=cfg.vocab_size,
                               val_fraction=cfg.val_fraction)
            parts = {part: code_tokens(part, tokenizer=cfg.tokenizer, vocab_size=cfg.vocab_size,
                                       corpus=cfg.tokenizer_corpus, val_fraction=cfg.val_fraction)
                     for part in ("train", "val")}
            return TokenData(train=parts["train"], val=parts["val"], vocab_size=base.vocab_size,
                             meta={"corpus": STDLIB, "tokenizer_corpus": cfg.tokenizer_corpus,
                                   "train_tokens": int(parts["train"].size), "val_tokens": int(parts["val"].size)})
        return load_tokens(cfg.corpus, tokenizer=cfg.tokenizer, vocab_size=cfg.vocab_size,
                           val_fraction=cfg.val_fraction)

    def sweep_context(self, db):
        """The pipeline's hook around a sweep: WSD trunks, branches and pre-training checkpoints beside ``db``."""
        from scalinglab.families.lm.wsd import checkpoints_beside

        return checkpoints_beside(db)

    def point_runs(self, runs):
        """The runs a study's scaling points are made of (the pipeline's hook, :mod:`scalinglab.studies.load`).

        A WSD trunk (constant LR to its last branch point) and a fine-tune
        (which starts from another run's weights) are no points of a scaling
        law: they are dropped. Every other run's C is the compute of the model
        it ends with (``metrics["model_flops"]``): for a branched cooldown, the
        one-piece run it stands for, trunk share included. The columns saying
        where a run started (``parent``, ``branch_step``, ``init_from``,
        ``init_step``) and ``checkpoint_steps`` are dropped, so the seeds of
        one setting (whose trunks differ) average together.
        """
        metrics = [m if isinstance(m, dict) else {} for m in runs["metrics"]] if "metrics" in runs else []
        keep = [m.get("role") not in ("trunk", "finetune") for m in metrics] if metrics else [True] * len(runs)
        out = runs.copy()
        if metrics:
            model = [m.get("model_flops") for m in metrics]
            out["flops"] = [f if f is not None else c for f, c in zip(model, out["flops"])]
        lineage = ("parent", "branch_step", "init_from", "init_step", "checkpoint_steps")
        return out[keep].drop(columns=[c for c in lineage if c in out])

    def report_extras(self, study, analysis) -> list:
        """The family's own report figures (:mod:`scalinglab.families.lm.report`)."""
        from scalinglab.families.lm.report import report_extras

        return report_extras(study, analysis)

    def train(self, config: dict, data: TokenData) -> RunResult:
        from scalinglab.store import run_key

        return train_lm(self.config(config), data, key=run_key(self.name, config))


FAMILY = LMFamily()
