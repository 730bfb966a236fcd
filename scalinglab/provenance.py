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


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
