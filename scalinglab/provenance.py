"""What produced a run: code version and library versions, stored with every row."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe`` of the scalinglab checkout (``+dirty`` if edited), else the package version."""
    from importlib.metadata import PackageNotFoundError, version

    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty=+dirty", "--abbrev=12"],
                             cwd=here, capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return "git:" + out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return "scalinglab " + version("scalinglab")
    except PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    import numpy
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "machine": platform.machine(),
            "processor": cpu_name()}


def _cpuinfo(*keys: str) -> str | None:
    """The value of the first /proc/cpuinfo line that starts with one of ``keys`` (None without the file)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(keys):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (``platform.processor()`` elsewhere)."""
    return _cpuinfo("model name") or platform.processor() or "unknown"


NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of hardware bf16 dot products


def cpu_flags() -> set[str]:
    """The CPU's feature flags as /proc/cpuinfo lists them (empty where there is no such file)."""
    return set((_cpuinfo("flags", "Features") or "").split())


@functools.lru_cache(maxsize=None)
def native_bf16() -> bool:
    """True where the CPU has bf16 dot products in hardware (AVX512-BF16 or AMX).

    Only there does bf16 autocast pay off; elsewhere oneDNN emulates bf16, and on
    an AVX2-only EPYC a bf16 step of the MNIST CNN took about 10x as long as an
    fp32 one (docs/benchmarks.md).
    """
    return any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS)


def default_precision(device: str = "cpu") -> str:
    """What ``precision="auto"`` means: bf16 where the device computes it natively, else fp32."""
    if str(device).startswith("cuda"):
        import torch

        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if native_bf16() else "fp32"


def resolve_precision(precision: str, device: str = "cpu") -> str:
    """``precision`` itself, or for "auto" this machine's :func:`default_precision`."""
    return default_precision(device) if precision == "auto" else precision
