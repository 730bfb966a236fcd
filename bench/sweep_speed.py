"""Sweep speed: a textbook PyTorch loop vs scalinglab's engine, side by side in one run.

The textbook loop (``scalinglab.families.mnist.reference``) is what the exercise would
be written as in a notebook: one model at a time, a ``DataLoader`` over a
``TensorDataset`` (batch 128), fp32, the optimizer's default (foreach) Adam,
all cores in one process. It visits the same examples in the same order with
the same initial weights and the same per-layer LRs as scalinglab, so
validation losses must agree: for the fp32 engine up to float rounding (which
Adam amplifies on near-zero gradients over a run), for bf16 within
seed-to-seed noise.

    python bench/sweep_speed.py                     # the 63-run one-seed exercise grid
    python bench/sweep_speed.py --widths 4,8 --fractions 1/16,1/32   # a quick look

Prints a table and writes bench/results/sweep_speed.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from scalinglab.families.mnist.model import train_flops_per_example, width_ladder
from scalinglab.store import RunStore
from scalinglab.sweep.engine import run_sweep
from scalinglab.families.mnist.grid import MnistGrid, halvings
from scalinglab.sweep.peak import measure_peak
from scalinglab.families.mnist.train import MnistRunConfig, MnistTensors
from scalinglab.families.mnist.reference import textbook_run


def engine(grid: MnistGrid, workers: int) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp, RunStore(Path(tmp) / "runs.db") as store:
        start = time.perf_counter()
        run_sweep(store, "bench", "mnist_cnn", grid.configs(), workers=workers, progress=False)
        wall = time.perf_counter() - start
        runs = store.runs()
    return wall, {(r.width, r.fraction, r.seed): r.val_loss for r in runs.itertuples()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", default=",".join(map(str, width_ladder())))
    p.add_argument("--fractions", default=",".join(str(f) for f in halvings(7)))
    p.add_argument("--seeds", default="0")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "sweep_speed.json"))
    args = p.parse_args(argv)

    grids = {prec: MnistGrid.from_dict({"widths": args.widths, "fractions": args.fractions,
                                        "seeds": args.seeds, "precision": prec})
             for prec in ("fp32", "bf16")}
    configs = [MnistRunConfig.from_dict(c) for c in grids["fp32"].configs()]
    total_flops = sum(train_flops_per_example(c.width) * c.n_examples for c in configs)
    print(f"{len(configs)} runs, {total_flops / 1e12:.2f} TFLOP of training", flush=True)

    peak = measure_peak()
    print(f"measured peak (conv fwd+bwd, {peak.threads} threads): fp32 {peak.fp32_gflops:.0f} GFLOP/s, "
          f"bf16 {peak.bf16_gflops:.0f} GFLOP/s", flush=True)

    data = MnistTensors.load()
    start = time.perf_counter()
    textbook = {(c.width, c.fraction, c.seed): textbook_run(c, data)[0] for c in configs}
    rows = [("textbook loop (fp32, 1 process)", time.perf_counter() - start, textbook, peak.fp32_gflops)]
    print(f"textbook: {rows[0][1]:.1f} s", flush=True)
    for prec in ("fp32", "bf16"):
        wall, losses = engine(grids[prec], args.workers)
        rows.append((f"scalinglab engine ({prec}, {args.workers} workers)", wall, losses,
                     peak.for_precision(prec)))
        print(f"engine {prec}: {wall:.1f} s", flush=True)

    base = rows[0][1]
    report = {"runs": len(configs), "train_tflop": total_flops / 1e12,
              "peak_gflops": {"fp32": peak.fp32_gflops, "bf16": peak.bf16_gflops}, "rows": []}
    print(f"\n{'':38s} {'wall s':>8s} {'speed-up':>9s} {'GFLOP/s':>8s} {'% peak':>7s} {'max |dL|':>9s}")
    for name, wall, losses, pk in rows:
        gflops = total_flops / wall / 1e9
        diff = max(abs(losses[k] - textbook[k]) for k in textbook)
        print(f"{name:38s} {wall:8.1f} {base / wall:8.2f}x {gflops:8.1f} {100 * gflops / pk:6.1f}% {diff:9.2e}")
        report["rows"].append({"name": name, "wall_s": wall, "speedup": base / wall, "gflops": gflops,
                               "pct_peak": 100 * gflops / pk, "max_abs_dloss": diff})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
