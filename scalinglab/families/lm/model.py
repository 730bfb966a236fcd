"""A decoder-only transformer (GPT-2 style) with exact parameter and FLOP counts.

One readable file, as in nanoGPT: pre-LayerNorm blocks of causal self-attention
and a GELU MLP (d_ff = 4 d_model), learned position embeddings, and an output
layer tied to the token embedding. Named sizes run from a 1-layer, 16-wide
model (3,312 non-embedding parameters) up to GPT-2 small's shape.

What scaling work needs from a model, and this file gives:

* ``param_counts(cfg)``: total parameters (Hoffmann et al. 2022 count these)
  and non-embedding parameters (Kaplan et al. 2020 count these: everything but
  the token and position embeddings). At small scale the two differ by a large
  factor and the choice moves the fitted exponents (Porian et al. 2024;
  Pearce & Song 2024), so both are always reported.
* ``flops_per_token(cfg)``: training FLOPs per token counted exactly, i.e. every
  matrix multiply the model runs, the attention score and value products and
  the output layer included, next to Kaplan's 6N approximation. "Exact" uses
  the convention of ``torch.utils.flop_counter.FlopCounterMode``: a multiply-add
  is 2 FLOPs, matrix products are counted, elementwise work (softmax, GELU,
  LayerNorm, the loss, the optimizer) is not. A test checks the count against
  FlopCounterMode for a forward and backward pass.

Attention is written out as two batched matmuls rather than calling
``F.scaled_dot_product_attention``: on CPU the fused kernel is invisible to
FlopCounterMode, and at these tiny head sizes it is not faster. The causal
mask does not skip work, so each token's attention costs the full context T
(Kaplan's Table 1 counts half of that, 2 n_layer n_ctx d_attn per token).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from scalinglab.errors import ConfigError


@dataclass(kw_only=True, slots=True)
class TransformerConfig:
    vocab_size: int  # tokens in the vocabulary (256 for bytes)
    n_layer: int  # transformer blocks
    d_model: int  # residual stream width
    n_head: int  # attention heads; head size = d_model / n_head
    context: int  # tokens per sequence, T
    mlp_ratio: int = 4  # d_ff = mlp_ratio * d_model
    dropout: float = 0.0  # on attention weights and residual branches; 0 for scaling runs

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "d_model", "n_head", "context", "mlp_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"TransformerConfig.{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_head:
            raise ConfigError(
                f"TransformerConfig.d_model ({self.d_model}) must be divisible by "
                f"n_head ({self.n_head}); pick n_head from the divisors of d_model")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"TransformerConfig.dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def d_ff(self) -> int:
        return self.mlp_ratio * self.d_model

    @property
    def head_size(self) -> int:
        return self.d_model // self.n_head


# Named sizes: name -> (n_layer, d_model, n_head). Head size 16 (12 for d24)
# up to d=128, then 32, then 64 (GPT-2 small). Aspect ratio d_model / n_layer
# stays in 16..64, where Kaplan et al. (2020, Fig. 5) find the loss depends
# only weakly on shape at fixed non-embedding N.
SIZES: dict[str, tuple[int, int, int]] = {
    "d16-l1": (1, 16, 1),
    "d24-l1": (1, 24, 2),
    "d32-l1": (1, 32, 2),
    "d48-l1": (1, 48, 3),
    "d48-l2": (2, 48, 3),
    "d64-l2": (2, 64, 4),
    "d80-l2": (2, 80, 5),
    "d96-l2": (2, 96, 6),
    "d96-l3": (3, 96, 6),
    "d128-l3": (3, 128, 8),
    "d128-l4": (4, 128, 8),
    "d160-l4": (4, 160, 5),
    "d192-l4": (4, 192, 6),
    "d256-l4": (4, 256, 8),
    "d256-l6": (6, 256, 8),
    "d384-l6": (6, 384, 6),
    "d512-l8": (8, 512, 8),
    "d768-l12": (12, 768, 12),
}


def size_config(size: str, *, vocab_size: int, context: int, dropout: float = 0.0) -> TransformerConfig:
    """The config of a named size (see ``SIZES``) for a given vocabulary and context."""
    if size not in SIZES:
        raise ConfigError(f"unknown transformer size {size!r}; known sizes: {', '.join(SIZES)}")
    n_layer, d_model, n_head = SIZES[size]
    return TransformerConfig(vocab_size=vocab_size, n_layer=n_layer, d_model=d_model,
                             n_head=n_head, context=context, dropout=dropout)


# ---------------------------------------------------------------------------
# Counts, from the config alone (no model needs to be built)
# ---------------------------------------------------------------------------

def param_counts(cfg: TransformerConfig) -> dict[str, int]:
    """Exact parameter counts of ``Transformer(cfg)``.

    ``kaplan_approx`` is Kaplan et al.'s N = 12 n_layer d_model^2, which drops
    biases and LayerNorm gains from ``non_embedding``.
    """
    d, f = cfg.d_model, cfg.d_ff
    per_layer = (
        2 * d  # ln_1 weight + bias
        + d * 3 * d + 3 * d  # qkv projection
        + d * d + d  # attention output projection
        + 2 * d  # ln_2
        + d * f + f  # MLP up
        + f * d + d  # MLP down
    )
    non_embedding = cfg.n_layer * per_layer + 2 * d  # + final LayerNorm
    embedding = cfg.vocab_size * d + cfg.context * d  # tokens (tied with the output layer) + positions
    return {
        "total": non_embedding + embedding,
        "non_embedding": non_embedding,
        "embedding": embedding,
        "kaplan_approx": 12 * cfg.n_layer * d * d,
    }


def flops_per_token(cfg: TransformerConfig) -> dict[str, int]:
    """FLOPs per trained token: exact matmul counts, and the 6N approximations.

    Forward, per token: each layer does the QKV, output and MLP projections
    (2 FLOPs per weight), the scores q k^T and the weighted sum att v (2 T
    d_model each, T = context); the output layer does 2 d_model V. Backward
    costs exactly twice the forward: every matmul has two operands that need
    gradients (the first layer's input carries the embeddings' gradient).
    """
    d, f, T, V = cfg.d_model, cfg.d_ff, cfg.context, cfg.vocab_size
    projections = 2 * (3 * d * d + d * d + 2 * d * f)  # qkv, out, mlp up + down
    attention = 2 * (2 * T * d)  # q k^T and att v over the full T x T block
    head = 2 * d * V
    forward = cfg.n_layer * (projections + attention) + head
    counts = param_counts(cfg)
    return {
        "forward": forward,
        "train": 3 * forward,
        "attention_train": 3 * cfg.n_layer * attention,
        "head_train": 3 * head,
        "six_n_total": 6 * counts["total"],
        "six_n_non_embedding": 6 * counts["non_embedding"],
    }


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------

class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.attn_drop = nn.Dropout(cfg.dropout)
        self.resid_drop = nn.Dropout(cfg.dropout)
        mask = torch.ones(cfg.context, cfg.context, dtype=torch.bool).triu(1)
        self.register_buffer("future", mask, persistent=False)  # True above the diagonal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)  # (B, T, C) each
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, nh, T, hs) x (B, nh, hs, T) -> (B, nh, T, T)
        att = att.masked_fill(self.future[:T, :T], float("-inf"))
        att = self.attn_drop(F.softmax(att, dim=-1))
        y = att @ v  # (B, nh, T, T) x (B, nh, T, hs) -> (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.d_ff)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(F.gelu(self.up(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """Decoder-only language model: tokens (B, T) -> next-token logits (B, T, V)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.context, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self._init_weights()

    def _init_weights(self) -> None:
        # GPT-2: N(0, 0.02) weights, zero biases, and the two projections that
        # write into the residual stream scaled by 1/sqrt(2 n_layer).
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
        for block in self.blocks:
            for proj in (block.attn.proj, block.mlp.down):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * self.cfg.n_layer))

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters counted from the tensors (the tied output layer once)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wte.weight.numel() + self.wpe.weight.numel()
        return n

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits (B, T, V), and the mean cross-entropy if ``targets`` (B, T) is given."""
        B, T = idx.shape
        if T > self.cfg.context:
            raise ConfigError(f"sequence length {T} exceeds the model's context {self.cfg.context}")
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C) + (T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # (B, T, C) x (C, V) -> (B, T, V), tied output layer
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss
