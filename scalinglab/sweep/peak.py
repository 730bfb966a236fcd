"""This machine's attainable convolution throughput, so a sweep can report its share.

A large 3x3 convolution (the shape of the MNIST CNN's second layer at its
widest, with a big batch) run through the same PyTorch/oneDNN backend the
sweep uses, on all cores, in fp32 and bf16. A busy machine slows some of the
measurement down, never speeds it up, so the peak is the best of several short
bursts spread over a few seconds, and the cache (per host name, CPU model,
torch version and core count) only ever keeps the higher figure unless asked
to measure afresh. Print :func:`load_average` beside any "% of peak": on a
machine shared with other work the sweep itself ran slower than idle.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass

from scalinglab.data.fetch import cache_dir
from scalinglab.provenance import library_versions
from scalinglab.safe_io import write_text_atomic

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Peak:
    fp32_gflops: float
    bf16_gflops: float
    threads: int
    load_1min: float | None = None  # the load average when the best burst was measured

    def for_precision(self, precision: str) -> float:
        return self.bf16_gflops if precision == "bf16" else self.fp32_gflops


def load_average() -> float | None:
    """This machine's 1-minute load average (None where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def measure_peak(threads: int | None = None, *, bursts: int = 5, burst_s: float = 0.3,
                 pause_s: float = 0.3) -> Peak:
    """Best forward+backward GFLOP/s of a large conv over ``bursts`` short bursts, fp32 and bf16 autocast."""
    import torch

    threads = threads or os.cpu_count() or 1
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        conv = torch.nn.Conv2d(128, 256, 3, padding=1).to(memory_format=torch.channels_last)
        x = torch.randn(64, 128, 14, 14).contiguous(memory_format=torch.channels_last).requires_grad_()
        flops = 3 * 2 * 64 * 14 * 14 * 256 * 128 * 9  # forward, input gradient, weight gradient
        best = dict.fromkeys(PRECISIONS, 0.0)
        load = None
        for burst in range(bursts):
            if burst:
                time.sleep(pause_s)  # spread the bursts, so one busy moment cannot spoil them all
            for precision in PRECISIONS:
                rate = _burst_gflops(conv, x, flops, precision, burst_s)
                if rate > best[precision]:
                    best[precision] = rate
                    if precision == "fp32":
                        load = load_average()
    finally:
        torch.set_num_threads(saved)
    return Peak(best["fp32"], best["bf16"], threads, load)


def _burst_gflops(conv, x, flops: float, precision: str, seconds: float) -> float:
    """GFLOP/s of the fastest step in ``seconds`` of back-to-back steps."""
    import torch

    fastest, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            y = conv(x)
        y.float().sum().backward()
        fastest = min(fastest, time.perf_counter() - t)
    return flops / fastest / 1e9


def machine_key() -> str:
    """What the cached peak depends on: host name, CPU model, torch version, core count."""
    v = library_versions()
    return f"{socket.gethostname()}|{v['processor']}|{v['torch']}|{os.cpu_count()}"


def machine_peak(refresh: bool = False) -> Peak:
    """This machine's cached peak, measured on first use (5-15 s); ``refresh`` measures again and replaces it.

    Without ``refresh`` a stored figure is never lowered: when another process
    stored a higher one while this one measured, the higher figure is kept.
    """
    key, path = machine_key(), cache_dir() / "peak.json"
    cached = _read_cache(path)
    if key in cached and not refresh:
        return Peak(**cached[key])
    peak = measure_peak()
    cached = _read_cache(path)  # again: a rival may have written meanwhile
    if key in cached and not refresh:
        peak = _higher(Peak(**cached[key]), peak)
    cached[key] = asdict(peak)
    write_text_atomic(path.parent, path.name, json.dumps(cached, indent=1))
    return peak


def _higher(a: Peak, b: Peak) -> Peak:
    """Per precision, the higher of two peaks (with the load average of the fp32 one kept)."""
    first = a if a.fp32_gflops >= b.fp32_gflops else b
    return Peak(first.fp32_gflops, max(a.bf16_gflops, b.bf16_gflops), first.threads, first.load_1min)


def _read_cache(path) -> dict:
    """The cache file's entries; an unreadable or stale-format file counts as empty (measured again)."""
    try:
        cached = json.loads(path.read_text())
        return {key: entry for key, entry in cached.items() if Peak(**entry)}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}
