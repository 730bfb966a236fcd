"""The engine's CUDA path: tested where a GPU exists, refused with one line where none does."""

import subprocess

import pytest
import torch

from scalinglab.errors import ConfigError
from scalinglab.families.mnist.train import MnistRunConfig, train_runs
from cli_helpers import scalinglab_cmd

CUDA = torch.cuda.is_available()


@pytest.mark.skipif(CUDA, reason="this machine has a CUDA device")
def test_cuda_refused_where_torch_sees_none(cli_env, tmp_path):
    with pytest.raises(ConfigError, match="device = 'cuda' is invalid.*use cpu"):
        MnistRunConfig(width=4, fraction=1.0, device="cuda")
    cmd = scalinglab_cmd("sweep", "mnist", "--widths", "4", "--fractions", "1/64", "--device", "cuda",
                         "--db", str(tmp_path / "x.db"), "--workers", "0")
    out = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=120)
    assert not (tmp_path / "x.db").exists() or "complete" not in out.stdout
    assert out.returncode != 0 and "device = 'cuda' is invalid" in out.stderr and "Traceback" not in out.stderr


def test_unknown_device_refused():
    for bad in ("gpu", "cuda:x", 3):
        with pytest.raises(ConfigError, match="device"):
            MnistRunConfig(width=4, fraction=1.0, device=bad)


@pytest.mark.skipif(not CUDA, reason="no CUDA device: the GPU path is checked where one exists")
@pytest.mark.parametrize("k", [1, 3])
def test_cuda_runs_match_cpu(mnist_tensors, k):
    """Same init, data order and dropout masks on the GPU: fp32 losses agree with the CPU's to rounding."""
    common = dict(width=4, fraction=1.0, train_limit=512, batch_size=64, precision="fp32")
    cpu = train_runs([MnistRunConfig(**common, seed=s, dropout=0.3 * (s % 2)) for s in range(k)], mnist_tensors)
    gpu = train_runs([MnistRunConfig(**common, seed=s, dropout=0.3 * (s % 2), device="cuda") for s in range(k)],
                     mnist_tensors)
    for a, b in zip(cpu, gpu):
        assert b.val_loss == pytest.approx(a.val_loss, rel=1e-3)
