"""bf16 autocast vs fp32: training throughput of the transformer family on this CPU.

    python bench/lm_bf16.py                 # sizes d32-l1 .. d192-l4, 1 thread, ~2 minutes
    python bench/lm_bf16.py --loss          # also: final validation loss of a short run in each precision

One training step = forward, backward and AdamW on a batch of 16 x 128
tokens (vocabulary 512), exactly as ``scalinglab.families.lm.train`` runs it, with the
noise-scale split off (noise_splits=1) so only the precision differs. The two
precisions are timed in alternating rounds and the median round is kept, so a
machine shared with other jobs biases both alike. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from scalinglab.families.lm.model import Transformer, flops_per_token, size_config
from scalinglab.families.lm.train import LMRunConfig, make_optimizer

SIZES = ("d32-l1", "d64-l2", "d96-l3", "d128-l4", "d192-l4")


def step_rate(size: str, precision: str, *, seconds: float, batch: int = 16, context: int = 128,
              vocab: int = 512) -> float:
    """Training tokens per second over about ``seconds`` of steps (after 3 warm-up steps)."""
    torch.manual_seed(0)
    model = Transformer(size_config(size, vocab_size=vocab, context=context))
    opt = make_optimizer(model, LMRunConfig(size=size, tokens=1))
    x = torch.randint(0, vocab, (batch, context))
    y = torch.randint(0, vocab, (batch, context))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            _, loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    return n * batch * context / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per size, precision and round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--loss", action="store_true", help="also compare validation loss after 1M tokens")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch 16 x 128 tokens, vocab 512, "
          f"median of {args.rounds} alternating rounds\n")
    print("| size | fp32 tokens/s | bf16 tokens/s | bf16 / fp32 | fp32 GFLOP/s | bf16 GFLOP/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for size in args.sizes.split(","):
        rates = {"fp32": [], "bf16": []}
        for _ in range(args.rounds):
            for precision in ("fp32", "bf16"):
                rates[precision].append(step_rate(size, precision, seconds=args.seconds))
        fp32, bf16 = statistics.median(rates["fp32"]), statistics.median(rates["bf16"])
        fpt = flops_per_token(size_config(size, vocab_size=512, context=128))["train"]
        print(f"| {size} | {fp32:,.0f} | {bf16:,.0f} | {bf16 / fp32:.2f} | {fp32 * fpt / 1e9:.1f} | "
              f"{bf16 * fpt / 1e9:.1f} |", flush=True)
    if args.loss:
        from scalinglab.families.lm.train import FAMILY

        print("\n| size | tokens | fp32 val loss | bf16 val loss |")
        print("|---|---:|---:|---:|")
        for size in ("d64-l2",):
            losses = {}
            for precision in ("fp32", "bf16"):
                cfg = {"size": size, "tokens": 1e6, "precision": precision}
                losses[precision] = FAMILY.train(cfg, FAMILY.load_data(cfg)).val_loss
            print(f"| {size} | 1M | {losses['fp32']:.4f} | {losses['bf16']:.4f} |")


if __name__ == "__main__":
    main()
