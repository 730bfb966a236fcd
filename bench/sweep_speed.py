"""Sweep speed: a textbook PyTorch loop vs scalinglab's engine, side by side in one run.

The textbook loop (``scalinglab.families.mnist.reference``) is what the exercise would
be written as in a notebook: one model at a time, a ``DataLoader`` over a
``TensorDataset`` (batch 128), fp32, the optimizer's default (foreach) Adam,
all cores in one process. It visits the same examples in the same order with
the same initial weights and the same per-layer LRs as scalinglab, so
validation losses must agree: for the fp32 engine up to float rounding (which
Adam amplifies on near-zero gradients over a run), for bf16 within
seed-to-seed noise.

Rows per grid: the textbook loop; the engine in fp32 and in bf16 (the
default is the one ``precision="auto"`` picks: bf16 only with native bf16);
and the bf16 engine as it was before issue 17 (torch's pool and
first convolution, every run alone: ``SCALINGLAB_NO_C_KERNELS=1``,
``max_batch=1``). The peak is measured in the same run, before and after the
grids, as the best of many short bursts; the CPU model and the load average
are printed.

    python bench/sweep_speed.py                      # the 63-run exercise grid and the wide grid
    python bench/sweep_speed.py --grids wide         # only the wide grid (widths 8-32, 12 runs)
    python bench/sweep_speed.py --grids full --rows before,fp32,bf16   # the full preset's 378 runs, engine rows
    python bench/sweep_speed.py --grids wide --rows before,default     # then and now only

Prints a table and writes bench/results/sweep_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from scalinglab.families.mnist.grid import PRESETS, MnistGrid, halvings
from scalinglab.families.mnist.model import train_flops_per_example, width_ladder
from scalinglab.families.mnist.reference import textbook_run
from scalinglab.families.mnist.train import MnistRunConfig, MnistTensors
from scalinglab.provenance import cpu_name, resolve_precision
from scalinglab.store import RunStore
from scalinglab.sweep.engine import run_sweep
from scalinglab.sweep.peak import Peak, load_average, measure_peak

ROWS = ("textbook", "before", "fp32", "bf16")
GRIDS = {
    "63": MnistGrid(widths=width_ladder(), fractions=halvings(7)),  # the exercise's one-seed grid
    "wide": MnistGrid(widths=[8, 16, 32], fractions=[1, 1 / 2, 1 / 4, 1 / 8]),
    "full": PRESETS["full"],
}


def _run_key(r) -> tuple:
    return (r.width, r.fraction, r.seed, getattr(r, "dropout", 0.0) or 0.0)


def engine(grid: MnistGrid, precision: str, workers: int, before: bool) -> tuple[float, dict]:
    grid = replace(grid, precision=precision)
    saved = os.environ.get("SCALINGLAB_NO_C_KERNELS")
    if before:
        os.environ["SCALINGLAB_NO_C_KERNELS"] = "1"  # read by the worker processes the sweep starts
    try:
        with tempfile.TemporaryDirectory() as tmp, RunStore(Path(tmp) / "runs.db") as store:
            start = time.perf_counter()
            run_sweep(store, "bench", "mnist_cnn", grid.configs(), workers=workers, progress=False,
                      max_batch=1 if before else 6)
            wall = time.perf_counter() - start
            runs = store.runs()
    finally:
        if saved is None:
            os.environ.pop("SCALINGLAB_NO_C_KERNELS", None)
        else:
            os.environ["SCALINGLAB_NO_C_KERNELS"] = saved
    return wall, {_run_key(r): r.val_loss for r in runs.itertuples()}


def best_peak(rounds: int) -> Peak:
    peaks = [measure_peak(bursts=5) for _ in range(rounds)]
    return Peak(max(p.fp32_gflops for p in peaks), max(p.bf16_gflops for p in peaks), peaks[0].threads,
                min(p.load_1min or 0 for p in peaks))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grids", default="63,wide", help="comma list of 63, wide, full")
    p.add_argument("--rows", default=",".join(ROWS),
                   help=f"comma list of {', '.join(ROWS)}, or default (the engine as it runs by default here)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "sweep_speed.json"))
    args = p.parse_args(argv)
    default = resolve_precision("auto")  # the engine's default precision here: bf16 only where it is native
    wanted = {default if r == "default" else r for r in args.rows.split(",")}
    if not wanted <= set(ROWS):
        p.error(f"--rows: unknown row(s) {', '.join(sorted(wanted - set(ROWS)))}; choose from {', '.join(ROWS)}, default")

    print(f"{cpu_name()}, {os.cpu_count()} CPUs; load average {load_average():.2f}", flush=True)
    peaks = [best_peak(3)]
    print(f"peak (conv fwd+bwd, {peaks[0].threads} threads, best of 15 bursts): fp32 {peaks[0].fp32_gflops:.0f}, "
          f"bf16 {peaks[0].bf16_gflops:.0f} GFLOP/s", flush=True)
    data = MnistTensors.load()
    measured = []
    for name in args.grids.split(","):
        grid = GRIDS[name]
        configs = [MnistRunConfig.from_dict(c) for c in replace(grid, precision="fp32").configs()]
        flops = sum(train_flops_per_example(c.width) * c.n_examples for c in configs)
        print(f"\ngrid {name}: {len(configs)} runs, {flops / 1e12:.2f} TFLOP of training", flush=True)
        rows = []
        if "textbook" in wanted:
            start = time.perf_counter()
            ref = {(c.width, c.fraction, c.seed, c.dropout): textbook_run(c, data)[0] for c in configs}
            rows.append(("textbook loop (fp32, 1 process)", time.perf_counter() - start, ref, load_average()))
            print(f"  textbook: {rows[-1][1]:.1f} s", flush=True)
        for row, label, prec, before in [("before", "engine before issue 17 (bf16)", "bf16", True),
                                         ("fp32", "engine (fp32)", "fp32", False),
                                         ("bf16", "engine (bf16)", "bf16", False)]:
            if row not in wanted:
                continue
            if not before and prec == default:
                label += ", the default"
            wall, losses = engine(grid, prec, args.workers, before)
            rows.append((f"{label}, {args.workers} workers", wall, losses, load_average()))
            print(f"  {label}: {wall:.1f} s", flush=True)
        measured.append((name, len(configs), flops, rows))
    peaks.append(best_peak(3))
    peak = Peak(max(q.fp32_gflops for q in peaks), max(q.bf16_gflops for q in peaks), peaks[0].threads)
    print(f"\npeak after the grids: fp32 {peaks[1].fp32_gflops:.0f}, bf16 {peaks[1].bf16_gflops:.0f}; "
          f"used: the higher of the two measurements")

    report = {"cpu": cpu_name(), "cpus": os.cpu_count(),
              "peak_gflops": {"fp32": peak.fp32_gflops, "bf16": peak.bf16_gflops}, "grids": []}
    for name, n_runs, flops, rows in measured:
        base = rows[0][1]
        ref = rows[0][2]
        print(f"\n### grid {name}: {n_runs} runs, {flops / 1e12:.2f} TFLOP\n")
        print("| | wall s | speed-up | GFLOP/s | % bf16 peak | % fp32 peak | max abs. diff. val loss | load avg. |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        out = []
        for label, wall, losses, load in rows:
            gflops = flops / wall / 1e9
            diff = max(abs(losses[k] - ref[k]) for k in ref) if losses is not ref else 0.0
            print(f"| {label} | {wall:.1f} | {base / wall:.2f}x | {gflops:.0f} | {100 * gflops / peak.bf16_gflops:.1f}% "
                  f"| {100 * gflops / peak.fp32_gflops:.1f}% | {diff:.1e} | {load:.2f} |")
            out.append({"name": label, "wall_s": wall, "speedup": base / wall, "gflops": gflops,
                        "pct_bf16_peak": 100 * gflops / peak.bf16_gflops,
                        "pct_fp32_peak": 100 * gflops / peak.fp32_gflops, "max_abs_dloss": diff, "load": load})
        report["grids"].append({"grid": name, "runs": n_runs, "train_tflop": flops / 1e12, "rows": out})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
