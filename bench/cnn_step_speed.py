"""Per-width cost of a training step and of an evaluation: the engine before issue 17 and the default now.

    python bench/cnn_step_speed.py          # 9 widths, 1 thread (as a sweep worker runs)
    python bench/cnn_step_speed.py --steps 8 --rounds 1    # where bf16 is emulated and slow

"before" is ``MnistCNN`` as the engine ran it when issue 17 was filed: oneDNN's
first convolution and ``max_pool2d`` + ReLU, in bf16 (the default then).
"now" is the default model: the kernels of
:mod:`scalinglab.families.mnist.kernels` where this machine uses them, in the
precision ``auto`` picks here (bf16 with native bf16, else fp32). Both compute
the same function of the same parameters; the script checks the evaluation
losses agree (to bf16 rounding when the precisions differ). The two variants
are timed in alternating rounds and the median round is kept.

``--kernels-vs-torch`` instead compares torch's ops with this machine's kernel
build (the portable loops too, which the model itself uses only with
AVX-512), both in the precision ``auto`` picks.

From the per-width times it also predicts the full preset's sweep (378 runs,
2 workers, each run its steps plus one evaluation, no batching):
``bench/sweep_speed.py --grids full`` measures the "now" side, which checks
the prediction. Prints Markdown tables and writes bench/results/cnn_step_speed.json.
(The issue-4 table in docs/benchmarks.md came from this script's earlier
version, in git history.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from scalinglab.families.mnist.grid import PRESETS
from scalinglab.provenance import cpu_name, resolve_precision
from scalinglab.sweep.peak import load_average

import scalinglab.families.mnist.train as mnist
from scalinglab.families.mnist import kernels
from scalinglab.families.mnist.model import MnistCNN, width_ladder


@contextlib.contextmanager
def kernel_library(lib):
    """The model on the kernel build ``lib`` (None: torch's own ops), whichever this machine would use."""
    saved = kernels._library
    kernels._library = lambda: lib
    try:
        yield
    finally:
        kernels._library = saved


def step_ms(model: MnistCNN, data: mnist.MnistTensors, steps: int, precision: str) -> float:
    """Milliseconds per training step, over ``steps`` steps after 3 warm-up steps."""
    opt = mnist.make_optimizer([(layer.parameters(), fan_in) for layer, fan_in in model.layers()], 0.1)
    order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(0))

    def step(i):
        idx = order[i * 128:(i + 1) * 128]
        with mnist._autocast(precision):
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


def eval_s(model: MnistCNN, data: mnist.MnistTensors, precision: str) -> tuple[float, float]:
    start = time.perf_counter()
    loss, _ = mnist.evaluate(model, data, precision)
    return time.perf_counter() - start, loss


def full_preset_s(rows: list[dict], name: str, workers: int = 2) -> float:
    """Predicted wall time of the full preset from per-width step and evaluation times."""
    by_width = {r["width"]: r for r in rows}
    total = 0.0
    for cfg in PRESETS["full"].configs():
        r = by_width[cfg["width"]]
        steps = math.ceil(mnist.MnistRunConfig.from_dict(cfg).n_examples / cfg["batch_size"])
        total += steps * r[f"{name}_step"] / 1e3 + r[f"{name}_eval"]
    return total / workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default=",".join(map(str, width_ladder())))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--kernels-vs-torch", action="store_true",
                        help="torch's ops vs this machine's kernel build, both in the auto precision")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cnn_step_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = mnist.MnistTensors.load()
    now = resolve_precision("auto")
    variants = {"before": (lambda: kernel_library(None), "bf16"), "after": (contextlib.nullcontext, now)}
    if args.kernels_vs_torch:
        built = kernels.build()
        if built is None:
            raise SystemExit("no C compiler: there is no kernel build to compare")
        variants = {"before": (lambda: kernel_library(None), now), "after": (lambda: kernel_library(built), now)}
        print(f"before: torch's ops; now: this machine's kernel build ({built.vector_lanes()} lanes)")
    print(f"{cpu_name()}, load average {load_average():.2f}; now: {now}, "
          f"{'kernels' if kernels._library() is not None else 'torch ops'}", flush=True)
    rows = []
    for width in map(int, args.widths.split(",")):
        times = {name: {"step": [], "eval": []} for name in variants}
        losses = {}
        for _ in range(args.rounds):
            for name, (ops, precision) in variants.items():
                torch.manual_seed(0)
                model = MnistCNN(width).to(memory_format=torch.channels_last)
                with ops():
                    t_eval, eval_loss = eval_s(model, data, precision)  # fresh weights: both see the same
                    times[name]["step"].append(step_ms(model, data, args.steps, precision))
                times[name]["eval"].append(t_eval)
                losses[name] = eval_loss
        if abs(losses["before"] - losses["after"]) > (1e-3 if now == "bf16" else 1e-2) * losses["before"]:
            raise SystemExit(f"width {width}: the variants disagree ({losses}); the comparison is void")
        med = {name: {k: statistics.median(v) for k, v in t.items()} for name, t in times.items()}
        rows.append({"width": width, **{f"{n}_{k}": v for n, t in med.items() for k, v in t.items()}})
        print(f"width {width}: step {med['before']['step']:.2f} -> {med['after']['step']:.2f} ms, "
              f"eval {med['before']['eval']:.3f} -> {med['after']['eval']:.3f} s", flush=True)

    print("\n| width | step ms, before | step ms, now | ratio | eval s, before | eval s, now | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['width']} | {r['before_step']:.2f} | {r['after_step']:.2f} | "
              f"{r['before_step'] / r['after_step']:.2f}x | {r['before_eval']:.3f} | {r['after_eval']:.3f} | "
              f"{r['before_eval'] / r['after_eval']:.2f}x |")
    total = {k: sum(r[k] for r in rows) for k in rows[0] if k != "width"}
    print(f"| all | {total['before_step']:.1f} | {total['after_step']:.1f} | "
          f"{total['before_step'] / total['after_step']:.2f}x | {total['before_eval']:.2f} | "
          f"{total['after_eval']:.2f} | {total['before_eval'] / total['after_eval']:.2f}x |")
    predicted = None
    if not args.kernels_vs_torch and set(PRESETS["full"].widths) <= {r["width"] for r in rows}:
        predicted = {name: full_preset_s(rows, name) for name in variants}
        print(f"\nfull preset, predicted for 2 workers: before {predicted['before']:.0f} s, "
              f"now {predicted['after']:.0f} s ({predicted['before'] / predicted['after']:.2f}x)")
    print(f"load average at the end {load_average():.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpu": cpu_name(), "threads": 1, "steps": args.steps, "rounds": args.rounds,
                                          "now_precision": now, "rows": rows, "full_preset_predicted_s": predicted},
                                         indent=1))


if __name__ == "__main__":
    main()
