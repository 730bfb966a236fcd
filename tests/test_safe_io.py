"""Output files never follow links planted in the output folder (issue 16, cases 5 and 6)."""

import os
import stat

import pytest

from faults.mounts import tmpfs
from scalinglab.errors import ConfigError
from scalinglab.safe_io import prepare_out_dir, write_bytes_atomic, write_text_atomic


@pytest.fixture
def victim(tmp_path):
    """A file outside the output folder that a planted link points at."""
    path = tmp_path / "outside" / "precious.txt"
    path.parent.mkdir()
    path.write_text("do not touch")
    return path


def test_a_planted_file_link_is_replaced_not_followed(tmp_path, victim):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").symlink_to(victim)
    written = write_text_atomic(out, "report.html", "<html>report</html>")
    assert victim.read_text() == "do not touch"  # before: the report went into the link's target
    assert not written.is_symlink() and written.read_text() == "<html>report</html>"
    assert sorted(os.listdir(out)) == ["report.html"]  # no temporary file left behind


def test_a_planted_folder_link_is_refused(tmp_path, victim):
    out = tmp_path / "out"
    out.mkdir()
    (out / "figures").symlink_to(victim.parent, target_is_directory=True)
    with pytest.raises(ConfigError, match="figures is a symbolic link .*does not write through links") as err:
        write_bytes_atomic(out, "figures/loss.png", b"\x89PNG")
    assert "\n" not in str(err.value)
    assert sorted(os.listdir(victim.parent)) == ["precious.txt"]


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd-copy", "figures/../../escape.txt", ""])
def test_names_leaving_the_folder_are_refused(tmp_path, name):
    out = prepare_out_dir(tmp_path / "out")
    with pytest.raises(ConfigError, match="relative path inside"):
        write_text_atomic(out, name, "x")
    assert not (tmp_path / "escape.txt").exists()


def test_sub_folders_are_made_and_files_get_the_usual_mode(tmp_path):
    out = prepare_out_dir(tmp_path / "a" / "b")
    umask = os.umask(0o022)
    try:
        path = write_bytes_atomic(out, "data/points.csv", b"x,y\n")
    finally:
        os.umask(umask)
    assert path.read_bytes() == b"x,y\n" and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert write_text_atomic(out, "data/points.csv", "new").read_text() == "new"  # replaced in place


def test_a_folder_where_a_file_should_go_is_one_line(tmp_path):
    out = prepare_out_dir(tmp_path / "out")
    (out / "report.json").mkdir()
    with pytest.raises(ConfigError, match="report.json: is a folder"):
        write_text_atomic(out, "report.json", "{}")


def test_out_naming_a_file_is_refused_before_any_work(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    with pytest.raises(ConfigError, match="--out .*notes.txt is a file, not a folder"):
        prepare_out_dir(path)
    assert path.read_text() == "mine"


def test_a_read_only_out_folder_is_refused_before_any_work(tmp_path):
    with tmpfs(tmp_path / "ro", "64k", readonly=True) as mnt:  # as root, chmod would not stop the write
        with pytest.raises(ConfigError, match="cannot be written .*Read-only file system") as err:
            prepare_out_dir(mnt / "study")
        assert "\n" not in str(err.value)
        with pytest.raises(ConfigError, match="cannot be written"):
            prepare_out_dir(mnt)


def test_runs_out_replaces_a_planted_link(tmp_path, victim, capsys):
    from scalinglab.cli import main
    from scalinglab.store import RunStore

    db = tmp_path / "runs.db"
    with RunStore(db) as store:
        store.add_study("s", "mnist_cnn", [{"width": 4}])
    out = tmp_path / "export"
    out.mkdir()
    (out / "runs.csv").symlink_to(victim)
    assert main(["runs", "--db", str(db), "--out", str(out / "runs.csv")]) == 0
    assert victim.read_text() == "do not touch"  # before: the CSV went into the link's target
    assert not (out / "runs.csv").is_symlink() and "width" in (out / "runs.csv").read_text()
    assert main(["runs", "--db", str(db), "--out", str(tmp_path / "missing" / "runs.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_fit_save_replaces_a_planted_link(tmp_path, victim):
    from scalinglab.cli import main

    table = tmp_path / "runs.csv"
    table.write_text("C,loss\n" + "".join(f"{c:g},{2.0 + 10 * c ** -0.3:.6f}\n" for c in (1e3, 1e4, 1e5, 1e6, 1e7, 1e8)))
    saved = tmp_path / "fit.json"
    saved.symlink_to(victim)
    assert main(["fit", str(table), "--law", "power", "--bootstrap", "0", "--save", str(saved)]) == 0
    assert victim.read_text() == "do not touch"  # before: the fit went into the link's target
    assert not saved.is_symlink() and '"law"' in saved.read_text()
