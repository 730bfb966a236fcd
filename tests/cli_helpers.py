"""Helpers for tests that run the scalinglab CLI in a subprocess."""

import sys


def scalinglab_cmd(*args: str) -> list[str]:
    """Command line running the scalinglab CLI with this interpreter."""
    return [sys.executable, "-m", "scalinglab", *args]
