"""Helpers that write real tracker stores for the import tests, with the trackers' own libraries."""

from __future__ import annotations

import contextlib
import os

# The synthetic law every source logs: L = E + A C^-alpha, with D = 20 N and C = 6 N D.
E, A, ALPHA = 1.8, 6500.0, 0.3
SIZES = (1e5, 3e5, 1e6, 3e6, 1e7, 3e7)
CURVE_POINTS = 5


def final_loss(n: float, i: int) -> float:
    """The law's loss for size ``n`` times a small fixed perturbation (run ``i``)."""
    wiggle = (0.001, -0.001, 0.0005, -0.0005, 0.001, -0.001, 0.0005, -0.0005)[i % 8]
    return (E + A * (6 * n * 20 * n) ** -ALPHA) * (1 + wiggle)


def curve_points(n: float) -> list[tuple[int, float]]:
    """(examples seen, training loss) along one run: the law at each fraction of its data."""
    d = 20 * n
    return [(int(d * (k + 1) / CURVE_POINTS), E + 1.1 * A * (6 * n * d * (k + 1) / CURVE_POINTS) ** -ALPHA)
            for k in range(CURVE_POINTS)]


def log_mlflow_runs(uri: str, experiment: str, sizes, *, first: int = 0) -> None:
    """Log one run per size with mlflow.log_param / mlflow.log_metric (steps = examples seen)."""
    with mlflow_at(uri) as mlflow:
        mlflow.set_experiment(experiment)
        for i, n in enumerate(sizes, start=first):
            with mlflow.start_run(run_name=f"n{int(n)}"):
                mlflow.log_params({"n_params": int(n), "tokens": int(20 * n), "lr": 3e-4, "seed": i % 2})
                for step, loss in curve_points(n):
                    mlflow.log_metric("train_loss", loss, step=step)
                mlflow.log_metric("val_loss", final_loss(n, i))
                mlflow.log_metric("val_acc", 0.5 + 0.01 * i)


def write_tensorboard_runs(root, sizes) -> None:
    """One SummaryWriter folder per size: train/loss curve, val/loss, and add_hparams with N and D."""
    from torch.utils.tensorboard import SummaryWriter

    for i, n in enumerate(sizes):
        with SummaryWriter(log_dir=str(root / f"n{int(n)}")) as writer:
            for step, loss in curve_points(n):
                writer.add_scalar("train/loss", loss, global_step=step)
            writer.add_scalar("val/loss", final_loss(n, i), global_step=int(20 * n))
            writer.add_hparams({"n_params": int(n), "tokens": int(20 * n), "lr": 3e-4},
                               {"hparam/val_loss": final_loss(n, i)})


def fitted_alpha(db, study: str) -> float:
    """The exponent of L = E + A C^-alpha fitted to the study's runs, read back from the store."""
    from scalinglab.fit import PowerLawFit, load_runs
    from scalinglab.store import RunStore

    with RunStore(db) as store:
        runs = store.runs(study=study, status="complete")
    return PowerLawFit().fit(load_runs(runs)).params_["alpha"]



@contextlib.contextmanager
def mlflow_at(uri: str):
    """The mlflow module logging to ``uri`` (file stores allowed, as MLflow 3 wants); the old URI is restored."""
    import mlflow

    saved_env, previous = os.environ.get("MLFLOW_ALLOW_FILE_STORE"), mlflow.get_tracking_uri()
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    mlflow.set_tracking_uri(uri)
    try:
        yield mlflow
    finally:
        mlflow.set_tracking_uri(previous)
        if saved_env is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = saved_env


def assert_one_line_errors(capsys, command: list[str], cases: list[tuple[list[str], str]]) -> None:
    """Each ``command + args`` exits 2 with one line `scalinglab: error: ...` containing its message."""
    from scalinglab.cli import main

    for args, message in cases:
        assert main([*command, *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("scalinglab: error: ") and message in err and err.count("\n") == 1, (args, err)
