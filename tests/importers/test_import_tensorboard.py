"""`scalinglab import tensorboard`: event files written by torch's SummaryWriter and TensorBoard's own writer."""

from __future__ import annotations

import numpy as np
import pytest
from import_sources import ALPHA, assert_one_line_errors, SIZES, curve_points, final_loss, fitted_alpha, write_tensorboard_runs

from scalinglab.cli import main
from scalinglab.errors import DataError
from scalinglab.importers import ImportMapping, import_runs, read_tensorboard
from scalinglab.store import RunStore

pytest.importorskip("tensorboard")


@pytest.fixture(scope="module")
def tb_log(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb") / "logs"
    write_tensorboard_runs(root, SIZES)
    return root


def test_summarywriter_runs_import_with_curves_and_hparams(tb_log, tmp_path, capsys):
    db = tmp_path / "runs.db"
    assert main(["import", "tensorboard", str(tb_log), "--db", str(db), "--study", "tb"]) == 0
    out = capsys.readouterr().out
    assert "6 run(s) added" in out
    assert "N <- hparams.n_params" in out and "loss <- val/loss" in out and "curve <- train/loss" in out
    with RunStore(db) as store:
        runs = store.runs(study="tb").sort_values("params")
    assert list(runs["params"]) == [int(n) for n in SIZES]         # from add_hparams' sub-folder
    assert list(runs["name"]) == [f"n{int(n)}" for n in SIZES]       # one run per writer folder
    np.testing.assert_allclose(runs["val_loss"], [final_loss(n, i) for i, n in enumerate(SIZES)], rtol=1e-6)
    np.testing.assert_allclose(runs["curve"].iloc[0], curve_points(SIZES[0]), rtol=1e-6)
    assert fitted_alpha(db, "tb") == pytest.approx(ALPHA, abs=0.02)
    assert main(["import", "tensorboard", str(tb_log), "--db", str(db), "--study", "tb"]) == 0
    assert "0 run(s) added, 6 already stored" in capsys.readouterr().out


def test_examples_per_step_scales_the_curve(tb_log):
    records = read_tensorboard(tb_log, mapping=ImportMapping(examples_per_step=128))
    config, result = min(records, key=lambda r: r[1]["params"])
    np.testing.assert_allclose(result["curve"], [(128 * s, v) for s, v in curve_points(SIZES[0])], rtol=1e-6)


def test_tensor_scalars_of_tensorboards_own_writer(tmp_path):
    """Scalars stored as tensors (the TF2 tf.summary.scalar form), written without torch."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.scalar import summary_v2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    for i, n in enumerate(SIZES):
        writer = EventFileWriter(str(tmp_path / "logs" / f"run{i}"))
        events = [("params", 0, n), ("tokens", 0, 20 * n), ("eval_loss", 10, final_loss(n, i))]
        events += [("loss", step, loss) for step, loss in curve_points(n)]
        for tag, step, value in events:
            writer.add_event(event_pb2.Event(step=step, summary=summary_v2.scalar_pb(tag, value)))
        writer.close()
    records = read_tensorboard(tmp_path / "logs")
    assert records.mapping["N"] == "params" and records.mapping["loss"] == "eval_loss"
    assert records.mapping["curve"].startswith("loss")
    summary = import_runs(tmp_path / "runs.db", records, study="tf2")
    assert len(summary.added) == 6
    assert fitted_alpha(tmp_path / "runs.db", "tf2") == pytest.approx(ALPHA, abs=0.02)


def test_bad_inputs(tb_log, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    db = str(tmp_path / "runs.db")
    cases = [
        ([str(tmp_path / "nope")], "no TensorBoard log at"),
        ([str(tmp_path / "empty")], "no TensorBoard event files"),
        ([str(tmp_path / "notes.txt")], "is not a TensorBoard event file"),
        ([str(tb_log), "--map", "loss=val/los"], "'val/los' (given with --map loss=val/los) is in no run"),
        ([str(tb_log), "--map", "curve=train/los"], "metric history 'train/los'"),
        ([str(tb_log), "--group", "hparams.optimizer"], "--group hparams.optimizer"),
        ([str(tb_log), "--map", "loss=hparams.lr", "--examples-per-step", "0"], "--examples-per-step"),
    ]
    assert_one_line_errors(capsys, ["import", "tensorboard", "--db", db, "--study", "s"], cases)


def test_a_log_without_a_loss_is_refused(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(tmp_path / "logs" / "a")) as writer:
        writer.add_scalar("lr", 0.1, global_step=0)
    with pytest.raises(DataError, match="no loss field .* --map loss=FIELD; the runs have: lr"):
        read_tensorboard(tmp_path / "logs")


def test_the_report_reads_an_imported_study(tb_log, tmp_path):
    """The generic report: its loss-compute fit and the imported training curves."""
    from scalinglab.report import build_report

    import_runs(tmp_path / "runs.db", read_tensorboard(tb_log), study="tb")
    report = build_report(tmp_path / "runs.db", "tb", n_resamples=2)
    assert "training-curves" not in report.missing
    curves = report.figure("training-curves").curves
    smallest = curves[curves["N"] == SIZES[0]]
    np.testing.assert_allclose(smallest["train_loss"], [loss for _, loss in curve_points(SIZES[0])], rtol=1e-6)
    fit = report.analysis.groups[0].fits["frontier"]
    assert fit.params["alpha"] == pytest.approx(ALPHA, abs=0.02)
