"""The transformer family: exact parameter and FLOP counts, config validation."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from scalinglab.errors import ConfigError
from scalinglab.families.lm.model import (SIZES, Transformer, TransformerConfig, flops_per_token,
                                           param_counts, size_config)


@pytest.mark.parametrize("size", [s for s in SIZES if SIZES[s][1] <= 384])
def test_param_counts_match_the_tensors(size):
    cfg = size_config(size, vocab_size=300, context=24)
    counts = param_counts(cfg)
    model = Transformer(cfg)
    assert counts["total"] == sum(p.numel() for p in model.parameters()) == model.num_params()
    assert counts["non_embedding"] == model.num_params(non_embedding=True)
    assert counts["total"] - counts["non_embedding"] == (300 + 24) * cfg.d_model
    # Kaplan's 12 n_layer d^2 leaves out only biases and LayerNorm gains: 13 d per layer + 2 d.
    assert counts["non_embedding"] - counts["kaplan_approx"] == 13 * cfg.d_model * cfg.n_layer + 2 * cfg.d_model


@pytest.mark.parametrize("size,vocab,context,batch", [("d32-l1", 256, 16, 3), ("d48-l2", 300, 20, 2),
                                                       ("d96-l3", 512, 8, 2)])
def test_training_flops_match_flop_counter(size, vocab, context, batch):
    """Forward + backward of a batch costs exactly flops_per_token['train'] per token."""
    cfg = size_config(size, vocab_size=vocab, context=context)
    torch.manual_seed(0)
    model = Transformer(cfg)
    x = torch.randint(0, vocab, (batch, context))
    with FlopCounterMode(display=False) as counter:
        _, loss = model(x, x)
        loss.backward()
    assert counter.get_total_flops() == flops_per_token(cfg)["train"] * batch * context
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            model(x)
    assert counter.get_total_flops() == flops_per_token(cfg)["forward"] * batch * context


def test_flops_break_down_into_six_n_attention_and_head():
    cfg = size_config("d64-l2", vocab_size=512, context=128)
    f, n = flops_per_token(cfg), param_counts(cfg)
    # Matmul weights: 12 L d^2 (projections) + V d (the tied output layer) -> 6 FLOPs each per token.
    weights = 12 * cfg.n_layer * cfg.d_model ** 2 + cfg.vocab_size * cfg.d_model
    assert f["train"] == 6 * weights + f["attention_train"]
    assert f["attention_train"] == 3 * cfg.n_layer * 4 * cfg.context * cfg.d_model
    assert f["head_train"] == 6 * cfg.vocab_size * cfg.d_model
    # Total-parameter 6N is within ~20% of exact here; non-embedding 6N misses the head and attention.
    assert 1.0 < f["train"] / f["six_n_total"] < 1.3
    assert f["train"] / f["six_n_non_embedding"] > 1.5


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="n_head"):
        TransformerConfig(vocab_size=10, n_layer=1, d_model=30, n_head=4, context=8)
    with pytest.raises(ConfigError, match="context"):
        TransformerConfig(vocab_size=10, n_layer=1, d_model=32, n_head=4, context=0)
    with pytest.raises(ConfigError, match="unknown transformer size"):
        size_config("d7-l9", vocab_size=10, context=8)


def test_model_is_causal():
    """Changing a later token never changes the logits at earlier positions."""
    torch.manual_seed(0)
    model = Transformer(size_config("d32-l1", vocab_size=50, context=12)).eval()
    x = torch.randint(0, 50, (1, 12))
    y = x.clone()
    y[0, 7:] = (y[0, 7:] + 1) % 50
    with torch.no_grad():
        a, _ = model(x)
        b, _ = model(y)
    assert torch.allclose(a[0, :7], b[0, :7], atol=1e-6)
    assert not torch.allclose(a[0, 7:], b[0, 7:])
