"""The measurement behind the default base learning rate of the MNIST family.

Per-layer Adam LR = lr / sqrt(fan_in) (the exercise's rule of thumb); this
sweeps the base ``lr`` over half-decades for widths 4..64 at two data
fractions and two seeds (bf16, one epoch), and prints the seed-mean
validation loss per (width, fraction) and LR.

    python bench/lr_sweep.py --db bench/results/lr.db

Re-running with the same --db only trains what is missing.
"""

import argparse

from scalinglab.store import RunStore
from scalinglab.sweep.engine import run_sweep

WIDTHS, FRACTIONS, SEEDS, LRS = (4, 8, 16, 32, 64), (1.0, 0.125), (0, 1), (0.01, 0.03, 0.1, 0.3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="lr.db")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    configs = [dict(width=w, fraction=f, seed=s, lr=lr, precision="bf16")
               for w in WIDTHS for f in FRACTIONS for s in SEEDS for lr in LRS]
    with RunStore(args.db) as store:
        run_sweep(store, "lr-sweep", "mnist_cnn", configs, workers=args.workers)
        runs = store.runs(study="lr-sweep", status="complete")
    table = runs.pivot_table(index=["width", "fraction"], columns="lr", values="val_loss", aggfunc="mean")
    print(table.round(4).to_string())
    best = table.idxmin(axis=1)
    print("\nbest base LR per (width, fraction):")
    print(best.to_string())


if __name__ == "__main__":
    main()
