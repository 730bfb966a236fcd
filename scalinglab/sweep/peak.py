"""This machine's attainable convolution throughput, so a sweep can report its share.

A large 3x3 convolution (the shape of the MNIST CNN's second layer at its
widest, with a big batch) run through the same PyTorch/oneDNN backend the
sweep uses, on all cores, in fp32 and bf16. The result is cached per CPU,
torch version and thread count.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass

from scalinglab.data.fetch import cache_dir
from scalinglab.provenance import library_versions


@dataclass(frozen=True)
class Peak:
    fp32_gflops: float
    bf16_gflops: float
    threads: int

    def for_precision(self, precision: str) -> float:
        return self.bf16_gflops if precision == "bf16" else self.fp32_gflops


def measure_peak(threads: int | None = None, seconds: float = 1.5) -> Peak:
    """Best-of-repeats forward+backward GFLOP/s of a large conv, fp32 and bf16 autocast."""
    import torch

    threads = threads or os.cpu_count() or 1
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        conv = torch.nn.Conv2d(128, 256, 3, padding=1).to(memory_format=torch.channels_last)
        x = torch.randn(64, 128, 14, 14).contiguous(memory_format=torch.channels_last).requires_grad_()
        macs = 64 * 14 * 14 * 256 * 128 * 9
        flops = 3 * 2 * macs  # forward, input gradient, weight gradient
        rates = {}
        for precision in ("fp32", "bf16"):
            best, deadline = float("inf"), time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    y = conv(x)
                y.float().sum().backward()
                best = min(best, time.perf_counter() - t)
            rates[precision] = flops / best / 1e9
    finally:
        torch.set_num_threads(saved)
    return Peak(rates["fp32"], rates["bf16"], threads)


def machine_peak(refresh: bool = False) -> Peak:
    """The cached peak for this machine (measured on first use, ~3 s)."""
    v = library_versions()
    key = f"{v['processor']}|{v['torch']}|{os.cpu_count()}"
    path = cache_dir() / "peak.json"
    cached = {}
    if path.exists():
        try:
            cached = json.loads(path.read_text())
        except ValueError:
            cached = {}
    if key in cached and not refresh:
        return Peak(**cached[key])
    peak = measure_peak()
    cached[key] = asdict(peak)
    path.write_text(json.dumps(cached, indent=1))
    return peak
