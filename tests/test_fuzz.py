"""No input makes the config loaders, the CSV loader or `scalinglab sweep mnist` show a traceback.

Every failure a user can cause must be a :class:`ScalingLabError` (printed
on one line by the CLI) or argparse's usage error (SystemExit 2). The CLI
fuzz replaces the executor with one that returns a made-up result at once,
so valid grids exercise the store and the engine without training.
"""

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalinglab.cli import main
from scalinglab.errors import ScalingLabError
from scalinglab.fit.table import load_runs
from scalinglab.sweep import engine
from scalinglab.sweep.executors import Outcome, task_runs
from scalinglab.families.mnist.grid import MnistGrid, read_grid_file

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GRID_KEYS = ["widths", "fractions", "seeds", "dropouts", "lrs", "batch_size", "precision",
             "train_limit", "data"]

scalars = (st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.sampled_from(["1/2", "0.25", "1/0", "nan", "inf", "-3", "4,8", ""]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
grid_dicts = st.dictionaries(st.sampled_from(GRID_KEYS) | st.text(max_size=8), values, max_size=6)


@FUZZ
@given(grid_dicts)
def test_grid_from_any_dict(d):
    try:
        grid = MnistGrid.from_dict(d)
    except ScalingLabError:
        return
    assert grid.configs()  # a grid that validates expands into at least one run


TOML_LINES = [
    "widths = [4, 8]\n", "fractions = [\"1/2\", 0.25]\n", "seeds = [0, 1]\n", "dropouts = 0.2\n",
    "train_limit = 1500\n", "train_limit = 0\n", "batch_size = 1.5\n", "batch_size = \"big\"\n",
    "precision = \"fp16\"\n", "widths = -4\n", "fractions = 2\n", "widths = []\n", "lrs = [0.1, 0.1]\n",
    "lrs = 1979-05-27\n", "[table]\nx = 1\n", "widths = {a = 1}\n", "data = [1, 2]\n", "nope = 1\n",
    "widths = [4, \n", "seeds = [true]\n", "dropouts = [\"nan\"]\n",
]
KNOWN_BAD_TOML = ["train_limit = \"many\"\n", "train_limit = 1979-05-27\n", "train_limit = 1500.0\n"]
toml_texts = st.lists(st.sampled_from(TOML_LINES + KNOWN_BAD_TOML), max_size=6).map("".join)


def grid_from_file(path):
    """What `sweep mnist --config` does before any run starts: read, merge, validate, cost every run."""
    from scalinglab.families.mnist.train import FAMILY

    grid = MnistGrid.from_dict({"widths": [4], "fractions": [1], **read_grid_file(path)}, origin=str(path))
    return [FAMILY.cost(c) for c in grid.configs()]


@FUZZ
@given(st.binary(max_size=200) | toml_texts.map(str.encode))
def test_grid_file_from_any_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grid.toml"
        path.write_bytes(data)
        try:
            grid_from_file(path)
        except ScalingLabError:
            pass


headers = st.sampled_from(["N", "D", "C", "loss", "params", "tokens", "flops", "val_loss", "seed",
                           "run", "x", "N", "", "\"N\"", "loss "])
cells = st.sampled_from(["1", "0", "-1", "1e9", "2.5", "nan", "inf", "", "abc", "\"1,2\"", "1e999",
                         "\"", "0x10", " 3 ", "True"])
csv_texts = st.builds(
    lambda head, rows, sep: sep.join(head) + "\n" + "\n".join(sep.join(r) for r in rows),
    st.lists(headers, min_size=1, max_size=5), st.lists(st.lists(cells, max_size=6), max_size=6),
    st.sampled_from([",", ";", "\t"]))


@FUZZ
@given(csv_texts.map(str.encode) | st.text(max_size=120).map(str.encode) | st.binary(max_size=120),
       st.sampled_from([".csv", ".tsv", ".txt"]),
       st.sampled_from([{}, {"n": "N"}, {"loss": "x"}, {"x": "x"}, {"require": ("N", "D", "C", "loss")}]))
def test_load_runs_from_any_csv_text(data, suffix, kwargs):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"runs{suffix}"
        path.write_bytes(data)
        try:
            runs = load_runs(path, **kwargs)
        except ScalingLabError:
            return
    assert len(runs) > 0 and "loss" in runs


class InstantExecutor:
    """Every run "trains" in no time and reports a made-up result."""

    capacity = 2

    def __init__(self, *args, **kwargs):
        self.done = []

    def submit(self, task):
        self.done.extend(Outcome(key, result=dict(params=1, flops=1.0, examples=1, val_loss=0.5))
                         for key, _ in task_runs(task))

    def poll(self, timeout):
        done, self.done = self.done, []
        return done

    def close(self):
        pass


flag_values = st.sampled_from(["4", "4,6", "-4", "0", "1/2", "1.5", "2", "", ",", "a", "1e3", "nan",
                               "tune", "0.1,0.3", "fp32", "bf16", "ray", "local", "99999999",
                               "1,1", "0.99", "-0"]) | st.text(max_size=8)
cli_flags = st.dictionaries(
    st.sampled_from(["--widths", "--fractions", "--seeds", "--dropout", "--lr", "--batch-size",
                     "--precision", "--train-limit", "--executor", "--address", "--name", "--data"]),
    flag_values, max_size=6)


@FUZZ
@given(cli_flags, st.sampled_from(["ok", "missing-folder", "a-folder", "garbage", "config"]), toml_texts)
def test_cli_sweep_with_any_flags(flags, db_kind, toml):
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "make_executor", InstantExecutor)
        tmp = Path(tmp)
        db = {"missing-folder": tmp / "no" / "runs.db", "a-folder": tmp}.get(db_kind, tmp / "runs.db")
        argv = ["sweep", "mnist", "--workers", "0", "--quiet", "--db", str(db)]
        if db_kind == "garbage":
            db.write_bytes(b"not a database" * 20)
        if db_kind == "config":
            (tmp / "grid.toml").write_text(toml)
            argv += ["--config", str(tmp / "grid.toml")]
        else:  # a tiny grid; the fuzzed flags below override it
            argv += ["--widths", "4", "--fractions", "1", "--train-limit", "100"]
        for flag, value in flags.items():
            argv += [f"{flag}={value}"]
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: a bad flag value, usage printed
            assert exc.code == 2
            return
        assert code in (0, 2)


@pytest.mark.parametrize("args, field", [
    (["--config", "{tmp}/grid.toml"], "unknown setting 'fraction'"),
    (["--widths", "4,-8"], "width = -8"),
    (["--fractions", "1,1.5"], "fraction = 1.5"),
    (["--widths", ""], "widths is empty"),
    (["--db", "{tmp}/missing/runs.db"], "missing does not exist"),
])
def test_bad_sweep_input_is_one_line_naming_the_field(args, field, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(engine, "make_executor", InstantExecutor)
    (tmp_path / "grid.toml").write_text("widths = [4]\nfraction = [1]\n")
    argv = ["sweep", "mnist", "--widths", "4", "--fractions", "1", "--train-limit", "100", "--workers", "0",
            "--quiet", "--db", str(tmp_path / "runs.db")]
    argv += [a.format(tmp=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and field in err, err



def test_absurd_width_is_recorded_not_a_traceback(tmp_path, monkeypatch):
    """Found by the CLI fuzz: a run's planned FLOPs overflowed SQLite's 64-bit INTEGER (fixed in store)."""
    monkeypatch.setattr(engine, "make_executor", InstantExecutor)
    argv = ["sweep", "mnist", "--widths", "99999999", "--fractions", "1/2", "--workers", "0", "--quiet",
            "--db", str(tmp_path / "runs.db")]
    assert main(argv) == 0


# ------------------------------------------------------------ regressions found by the fuzz tests

@pytest.mark.parametrize("d", [{}, {"widths": [4]}, {"fractions": [1]}])
def test_grid_without_required_fields_names_them(d):
    with pytest.raises(ScalingLabError, match="widths|fractions"):
        MnistGrid.from_dict(d)


@pytest.mark.parametrize("line", KNOWN_BAD_TOML)
def test_non_integer_train_limit_names_the_field(line, tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(line)
    with pytest.raises(ScalingLabError, match="train_limit"):
        grid_from_file(path)
