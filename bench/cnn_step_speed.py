"""Per-width cost of a training step and of an evaluation, before and after two layout changes.

    python bench/cnn_step_speed.py          # 9 widths, 1 thread (as a sweep worker runs), ~2 minutes

"before" is ``MnistCNN`` as first written: the classifier reads ``x.flatten(1)``
((c, h, w) order, a copy of a channels_last tensor, whose gradient comes back
in the other layout), and evaluation runs ``max_pool2d`` in batches of 2,000.
"after" is the current ``MnistCNN``: the (h, w, c) flatten with the
classifier's columns permuted to match, and evaluation in batches of 128 with
the index-free pool. Both compute the same function of the same parameters;
the script checks the losses agree. The two variants are timed in alternating
rounds and the median round is kept. Steps use bf16 autocast, the sweep's
default. Prints a Markdown table and writes bench/results/cnn_step_speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import scalinglab.families.mnist.train as mnist
from scalinglab.families.mnist.model import MnistCNN, width_ladder


class BeforeCNN(MnistCNN):
    """The same layers and parameters; the first forward pass."""

    def forward(self, x):
        x = torch.relu(F.max_pool2d(self.conv1(x), 2))
        x = torch.relu(F.max_pool2d(self.conv2(x), 2))
        return self.fc(self.drop(x.flatten(1)))


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
    variants = {"before": (BeforeCNN, 2000), "after": (MnistCNN, mnist.EVAL_BATCH)}
    rows = []
    for width in map(int, args.widths.split(",")):
        times = {name: {"step": [], "eval": []} for name in variants}
        losses = {}
        for _ in range(args.rounds):
            for name, (cls, batch) in variants.items():
                torch.manual_seed(0)
                model = cls(width).to(memory_format=torch.channels_last)
                t_eval, eval_loss = eval_s(model, data, batch)  # fresh weights: both variants see the same
                times[name]["step"].append(step_ms(model, data, args.steps))
                times[name]["eval"].append(t_eval)
                losses[name] = eval_loss
        if abs(losses["before"] - losses["after"]) > 1e-3 * losses["before"]:
            raise SystemExit(f"width {width}: the variants disagree ({losses}); the comparison is void")
        med = {name: {k: statistics.median(v) for k, v in t.items()} for name, t in times.items()}
        rows.append({"width": width, **{f"{n}_{k}": v for n, t in med.items() for k, v in t.items()}})
        print(f"width {width}: step {med['before']['step']:.2f} -> {med['after']['step']:.2f} ms, "
              f"eval {med['before']['eval']:.3f} -> {med['after']['eval']:.3f} s", flush=True)

    print("\n| width | step ms, before | step ms, after | ratio | eval s, before | eval s, after | ratio |")
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
