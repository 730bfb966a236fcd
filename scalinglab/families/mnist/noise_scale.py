"""B_simple (McCandlish et al. 2018) along an MNIST CNN training run (docs/noise-scale.md)."""

from __future__ import annotations

import torch

from scalinglab.core.noise_scale import NoiseScale, accumulate_gradients


def mnist_noise_scale(width: int = 16, *, batch_size: int = 128, n_small: int = 4, epochs: int = 1,
                      lr: float | None = None, seed: int = 0, points: int = 12,
                      train_limit: int | None = None, test: bool = True) -> list[dict]:
    """Train a ``MnistCNN`` of the given width and measure B_simple as it learns.

    The training recipe is the MNIST family's (:mod:`scalinglab.families.mnist.train`:
    Adam, layer LR = lr / sqrt(fan_in)); each step's batch of ``batch_size``
    images is split into ``n_small`` small batches for the estimator. Returns
    one row per segment of the run: images seen, mean train loss, test loss and
    accuracy (None with ``test=False``), |G|^2, tr(Sigma) and B_simple (in
    images), each averaged over the segment.
    """
    import numpy as np
    import torch.nn.functional as F

    from scalinglab.families.mnist.model import MnistCNN
    from scalinglab.families.mnist import train as mnist_train

    if batch_size % n_small:
        raise ValueError(f"batch_size ({batch_size}) must be a multiple of n_small ({n_small})")
    data = mnist_train.MnistTensors.load()
    torch.manual_seed(seed)
    model = MnistCNN(width, 0.0)
    opt = mnist_train.make_optimizer([(layer.parameters(), fan_in) for layer, fan_in in model.layers()],
                                     lr if lr is not None else mnist_train.DEFAULT_LR)
    n = len(data.x_train) if train_limit is None else train_limit
    g = torch.Generator().manual_seed(seed)
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(epochs)])
    steps = len(order) // batch_size
    bounds = np.linspace(0, steps, points + 1).round().astype(int)
    small = batch_size // n_small

    def loss_fn(m, batch):
        x, y = batch
        return F.cross_entropy(m(x), y)

    rows, step = [], 0
    for seg in range(points):
        segment, losses = NoiseScale(), []
        for step in range(bounds[seg], bounds[seg + 1]):
            idx = order[step * batch_size:(step + 1) * batch_size]
            batches = [(data.x_train[idx[i:i + small]], data.y_train[idx[i:i + small]])
                       for i in range(0, batch_size, small)]
            loss, sample = accumulate_gradients(model, loss_fn, batches)
            opt.step()
            segment.update(sample)
            losses.append(loss)
        test_loss, test_acc = mnist_train.evaluate(model, data, "fp32") if test else (None, None)
        rows.append({"images": int(bounds[seg + 1]) * batch_size, "train_loss": float(np.mean(losses)),
                     "test_loss": test_loss, "test_acc": test_acc, "g2": segment.g2_,
                     "trace": segment.trace_, "b_simple": segment.b_simple, "steps": segment.n_})
    return rows
