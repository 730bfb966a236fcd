"""The MNIST CNN's two layers that torch runs slowly on the CPU, as C kernels.

- ``pool_relu``: ``relu(max_pool2d(x, 2))`` in one pass each way. torch's
  max-pool forward computes argmax indices, and its backward zero-fills the
  input gradient and scatters into it by index; with the ReLU's own two passes
  that was a third of a training step at every width. Here the forward writes
  the output and a one-byte window slot, the backward writes each
  input-gradient element once, and the same element wins as in torch (the
  first maximum in row-major order), so values and gradients are identical,
  ties and NaN included.
- ``conv1``: the first convolution (3x3, one input channel per group) as a
  direct loop over the nine taps with fp32 sums; oneDNN spent ~2 ms per batch
  on it whatever the width.

:file:`kernels.c` is compiled with the system C compiler at first use into the
cache (one shared object per source, flags, compiler and CPU), which takes
about a second; with AVX-512 it runs 16 channels at a time with masked loads
(any channel count). Only that build is used: on an AVX2-only CPU the portable
loops made the fp32 step slower than torch's ops
(``bench/cnn_step_speed.py --kernels-vs-torch``, ``docs/benchmarks.md``), so
there, where no compiler works, or where ``SCALINGLAB_NO_C_KERNELS`` is set,
both layers run on torch's ops. The portable build stays the tests' second
check of the same code.
``tests/test_kernels.py`` compares both builds with torch.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

SOURCE = Path(__file__).with_name("kernels.c")
_KINDS = {torch.float32: "f32", torch.bfloat16: "bf16"}
_CL = torch.channels_last


FLAGS = ("-O3", "-march=native", "-fno-trapping-math", "-shared", "-fPIC")


def build(extra_flags: tuple[str, ...] = ()) -> ctypes.CDLL | None:
    """Compile :file:`kernels.c` (once per source, flags, compiler and CPU) and load it; None if that fails.

    ``extra_flags`` exist for the tests: ``("-mno-avx512f",)`` builds the
    portable loops that machines without AVX-512 run.
    """
    from scalinglab.data.fetch import cache_dir
    from scalinglab.provenance import cpu_name

    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    flags = [*FLAGS, *extra_flags]
    key = f"{SOURCE.read_text()}|{compiler}|{flags}|{platform.machine()}|{cpu_name()}"
    try:
        target = cache_dir() / "kernels" / f"mnist-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                built = Path(tmp) / target.name
                subprocess.run([compiler, *flags, "-o", str(built), str(SOURCE)],
                               check=True, capture_output=True, timeout=120)
                os.replace(built, target)  # atomic: concurrent workers may build the same file
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError):  # no compiler that works, a read-only or full cache
        return None
    for kind in _KINDS.values():
        for part in ("forward", "backward"):
            getattr(lib, f"{kind}_{part}").argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_long] * 5
            getattr(lib, f"{kind}_conv1_{part}").argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_long] * 6
    return lib


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    """The kernels this process uses; None (torch's ops) without an AVX-512 build or when switched off."""
    lib = None if os.environ.get("SCALINGLAB_NO_C_KERNELS") else build()
    return lib if lib is not None and lib.vector_lanes() > 1 else None


def _ranges(n: int) -> list[tuple[int, int]]:
    """The batch split into one range per torch thread (ctypes releases the GIL, so threads overlap)."""
    parts = max(1, min(torch.get_num_threads(), n // 16))
    return [(n * k // parts, n * (k + 1) // parts) for k in range(parts)]


def _run_parallel(calls) -> None:
    if len(calls) == 1:
        calls[0]()
        return
    threads = [threading.Thread(target=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _split(n: int, fn) -> None:
    """Run ``fn(n0, n1)`` over the batch's ranges."""
    _run_parallel([lambda a=a, b=b: fn(a, b) for a, b in _ranges(n)])


class _PoolRelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lib):
        kind = _KINDS[x.dtype]
        x = x.contiguous(memory_format=_CL)
        n, c, h, w = x.shape
        y = torch.empty((n, c, h // 2, w // 2), dtype=x.dtype, memory_format=_CL)
        slot = torch.empty((n, h // 2, w // 2, c), dtype=torch.uint8)
        fn = getattr(lib, f"{kind}_forward")
        _split(n, lambda a, b: fn(x.data_ptr(), y.data_ptr(), slot.data_ptr(), a, b, h, w, c))
        ctx.save_for_backward(slot)
        ctx.shape, ctx.lib = (n, c, h, w), lib
        return y

    @staticmethod
    def backward(ctx, g):
        (slot,) = ctx.saved_tensors
        n, c, h, w = ctx.shape
        g = g.contiguous(memory_format=_CL)
        gx = torch.empty((n, c, h, w), dtype=g.dtype, memory_format=_CL)
        fn = getattr(ctx.lib, f"{_KINDS[g.dtype]}_backward")
        _split(n, lambda a, b: fn(g.data_ptr(), slot.data_ptr(), gx.data_ptr(), a, b, h, w, c))
        return gx, None


class _Conv1(torch.autograd.Function):
    """3x3 convolution, padding 1, of one-channel images (one per group), channels_last out."""

    @staticmethod
    def forward(ctx, x, weight, bias, lib, out_dtype):
        n, groups, h, w = x.shape
        c = weight.shape[0]
        rounded = (lambda t: t.to(torch.bfloat16).float()) if out_dtype == torch.bfloat16 else (lambda t: t)
        x = rounded(x.contiguous(memory_format=_CL))  # bf16: what autocast would hand oneDNN
        taps, bias = rounded(weight.reshape(c, 9).t().contiguous()), rounded(bias.contiguous())  # (9, C)
        out = torch.empty((n, c, h, w), dtype=out_dtype, memory_format=_CL)
        fn = getattr(lib, f"{_KINDS[out_dtype]}_conv1_forward")
        _split(n, lambda a, b: fn(x.data_ptr(), taps.data_ptr(), bias.data_ptr(), out.data_ptr(),
                                  a, b, h, w, groups, c // groups))
        ctx.save_for_backward(x)
        ctx.lib, ctx.shape = lib, (n, groups, h, w, c)
        return out

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        n, groups, h, w, c = ctx.shape
        g = g.contiguous(memory_format=_CL)
        ranges = _ranges(n)
        gw, gb = torch.empty(len(ranges), 9, c), torch.empty(len(ranges), c)  # one partial sum per range
        fn = getattr(ctx.lib, f"{_KINDS[g.dtype]}_conv1_backward")
        _run_parallel([lambda k=k, a=a, b=b: fn(x.data_ptr(), g.data_ptr(), gw[k].data_ptr(), gb[k].data_ptr(),
                                                a, b, h, w, groups, c // groups)
                       for k, (a, b) in enumerate(ranges)])
        return None, gw.sum(0).t().reshape(c, 1, 3, 3), gb.sum(0), None, None


def conv1(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, lib: ctypes.CDLL | None = None):
    """``F.conv2d(x, weight, bias, padding=1, groups=x.shape[1])`` for a (C, 1, 3, 3) weight.

    Under bf16 autocast the inputs and weights are rounded to bf16, as autocast
    does, the sums are fp32 and the output bf16; the images need no gradient.
    """
    lib = lib or _library()
    bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    if lib is None or x.requires_grad or x.device.type != "cpu" or x.dtype != torch.float32 \
            or weight.dtype != torch.float32:
        return F.conv2d(x, weight, bias, padding=1, groups=x.shape[1])
    return _Conv1.apply(x, weight, bias, lib, torch.bfloat16 if bf16 else torch.float32)


def _eval_pool(x: torch.Tensor) -> torch.Tensor:
    """The fallback without autograd: the maximum of the four strided corners (no indices to compute)."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2  # max_pool2d drops an odd last row/column
    x = x[..., :h, :w]
    return torch.maximum(torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2]),
                         torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2]))


def pool_relu(x: torch.Tensor, lib: ctypes.CDLL | None = None) -> torch.Tensor:
    """``relu(max_pool2d(x, 2))`` of an (N, C, H, W) tensor (channels_last is fastest).

    ``lib`` is a kernel build to use instead of this process's own (tests).
    """
    lib = lib or _library()
    if lib is not None and x.device.type == "cpu" and x.dtype in _KINDS:
        return _PoolRelu.apply(x, lib)
    if not x.requires_grad:
        return torch.relu(_eval_pool(x))
    return torch.relu(F.max_pool2d(x, 2))
