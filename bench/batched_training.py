"""Several runs of one width as one computation vs each run alone, per width.

    python bench/batched_training.py                 # widths 4..32, 6 runs each (3 seeds x 2 dropouts)
    python bench/batched_training.py --widths 4,8 --fraction 1/4

The six runs of a full-preset setting (same width and fraction; seeds 0-2,
dropout 0 and 0.5) are trained one after another, then together as one
``StackedCNN``, in alternating rounds on one thread (as a sweep worker runs);
the faster round of each is kept. Training and the test-set evaluation are
both timed. Prints a Markdown table and writes bench/results/batched_training.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from fractions import Fraction
from pathlib import Path

import torch

from scalinglab.families.mnist.train import MnistRunConfig, MnistTensors, train_runs
from scalinglab.provenance import cpu_name
from scalinglab.sweep.peak import load_average


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", default="4,6,8,11,16,23,32")
    p.add_argument("--fraction", default="1/16")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "batched_training.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = MnistTensors.load()
    fraction = float(Fraction(args.fraction))
    print(f"{cpu_name()}, {os.cpu_count()} CPUs, load average {load_average():.2f}")
    rows = []
    print("| width | 6 runs alone, s | 6 runs batched, s | speed-up | max abs. diff. in val loss |")
    print("|---:|---:|---:|---:|---:|")
    for width in map(int, args.widths.split(",")):
        cfgs = [MnistRunConfig(width=width, fraction=fraction, seed=s, dropout=d, precision="bf16")
                for s in range(3) for d in (0.0, 0.5)]
        alone_s, batched_s = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            alone = [train_runs([c], data)[0] for c in cfgs]
            alone_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            batched = train_runs(cfgs, data)
            batched_s.append(time.perf_counter() - start)
        diff = max(abs(a.val_loss - b.val_loss) for a, b in zip(alone, batched))
        row = {"width": width, "alone_s": min(alone_s), "batched_s": min(batched_s),
               "speedup": min(alone_s) / min(batched_s), "max_abs_dloss": diff}
        rows.append(row)
        print(f"| {width} | {row['alone_s']:.2f} | {row['batched_s']:.2f} | {row['speedup']:.2f}x | {diff:.1e} |",
              flush=True)
    print(f"load average at the end: {load_average():.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"fraction": fraction, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
