"""Per-width cost of a training step and of an evaluation, with torch's ops and with scalinglab's kernels.

    python bench/cnn_step_speed.py          # 9 widths, 1 thread (as a sweep worker runs), ~2 minutes

"torch ops" is ``MnistCNN`` as the engine ran it before issue 17: oneDNN's
first convolution and ``max_pool2d`` + ReLU. "kernels" is the current model:
the first convolution and relu(max-pool) from
:mod:`scalinglab.families.mnist.kernels`. Both compute the same function of the
same parameters; the script checks the losses agree. The two variants are
timed in alternating rounds and the median round is kept. Steps use bf16
autocast, the sweep's default. Prints a Markdown table and writes
bench/results/cnn_step_speed.json. (The issue-4 table in docs/benchmarks.md
came from this script's earlier version, in git history.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import scalinglab.families.mnist.train as mnist
from scalinglab.families.mnist import kernels
from scalinglab.families.mnist.model import MnistCNN, width_ladder


@contextlib.contextmanager
def torch_ops():
    """The model on torch's own ops, as before the kernels."""
    saved = kernels._library
    kernels._library = lambda: None
    try:
        yield
    finally:
        kernels._library = saved


def step_ms(model: MnistCNN, data: mnist.MnistTensors, steps: int) -> float:
    """Milliseconds per bf16 training step, over ``steps`` steps after 3 warm-up steps."""
    opt = mnist.make_optimizer([(layer.parameters(), fan_in) for layer, fan_in in model.layers()], 0.1)
    order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(0))

    def step(i):
        idx = order[i * 128:(i + 1) * 128]
        with mnist._autocast("bf16"):
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()

    for i in range(3):
        step(i)
    start = time.perf_counter()
    for i in range(3, 3 + steps):
        step(i)
    return 1e3 * (time.perf_counter() - start) / steps


def eval_s(model: MnistCNN, data: mnist.MnistTensors, batch: int) -> tuple[float, float]:
    saved, mnist.EVAL_BATCH = mnist.EVAL_BATCH, batch
    try:
        start = time.perf_counter()
        loss, _ = mnist.evaluate(model, data, "bf16")
        return time.perf_counter() - start, loss
    finally:
        mnist.EVAL_BATCH = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default=",".join(map(str, width_ladder())))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cnn_step_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = mnist.MnistTensors.load()
    variants = {"before": torch_ops, "after": contextlib.nullcontext}
    rows = []
    for width in map(int, args.widths.split(",")):
        times = {name: {"step": [], "eval": []} for name in variants}
        losses = {}
        for _ in range(args.rounds):
            for name, ops in variants.items():
                torch.manual_seed(0)
                model = MnistCNN(width).to(memory_format=torch.channels_last)
                with ops():
                    t_eval, eval_loss = eval_s(model, data, mnist.EVAL_BATCH)  # fresh weights: both see the same
                    times[name]["step"].append(step_ms(model, data, args.steps))
                times[name]["eval"].append(t_eval)
                losses[name] = eval_loss
        if abs(losses["before"] - losses["after"]) > 1e-3 * losses["before"]:
            raise SystemExit(f"width {width}: the variants disagree ({losses}); the comparison is void")
        med = {name: {k: statistics.median(v) for k, v in t.items()} for name, t in times.items()}
        rows.append({"width": width, **{f"{n}_{k}": v for n, t in med.items() for k, v in t.items()}})
        print(f"width {width}: step {med['before']['step']:.2f} -> {med['after']['step']:.2f} ms, "
              f"eval {med['before']['eval']:.3f} -> {med['after']['eval']:.3f} s", flush=True)

    print("\n| width | step ms, torch ops | step ms, kernels | ratio | eval s, torch ops | eval s, kernels | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['width']} | {r['before_step']:.2f} | {r['after_step']:.2f} | "
              f"{r['before_step'] / r['after_step']:.2f}x | {r['before_eval']:.3f} | {r['after_eval']:.3f} | "
              f"{r['before_eval'] / r['after_eval']:.2f}x |")
    total = {k: sum(r[k] for r in rows) for k in rows[0] if k != "width"}
    print(f"| all | {total['before_step']:.1f} | {total['after_step']:.1f} | "
          f"{total['before_step'] / total['after_step']:.2f}x | {total['before_eval']:.2f} | "
          f"{total['after_eval']:.2f} | {total['before_eval'] / total['after_eval']:.2f}x |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"threads": 1, "steps": args.steps, "rounds": args.rounds,
                                          "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
