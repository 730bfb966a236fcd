"""Writing a report into a folder where links were planted (issue 16, case 6)."""

import os

import pytest

from scalinglab.errors import ConfigError
from scalinglab.report import write_report


@pytest.fixture
def victims(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("bashrc", "notes.json", "data.csv", "figure.png"):
        (outside / name).write_text("do not touch")
    return outside


def test_planted_file_links_are_replaced_not_followed(toy_report, tmp_path, victims):
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "figures").mkdir()
    first = toy_report.charts()[0].key
    group = toy_report.analysis.groups[0].slug
    links = {"report.html": "bashrc", "report.json": "notes.json", f"data/points-{group}.csv": "data.csv",
             f"figures/{first}.png": "figure.png"}
    for name, target in links.items():
        (out / name).symlink_to(victims / target)
    page = write_report(toy_report, out, static=True)
    assert all((victims / t).read_text() == "do not touch" for t in links.values())  # before: overwritten
    assert not any((out / name).is_symlink() for name in links)
    assert "<html" in page.read_text()[:200].lower()
    assert (out / f"figures/{first}.png").read_bytes()[:4] == b"\x89PNG"


def test_a_planted_folder_link_is_refused(toy_report, tmp_path, victims):
    out = tmp_path / "out"
    out.mkdir()
    (out / "data").symlink_to(victims, target_is_directory=True)
    with pytest.raises(ConfigError, match="data is a symbolic link"):
        write_report(toy_report, out, static=False)
    assert sorted(os.listdir(victims)) == ["bashrc", "data.csv", "figure.png", "notes.json"]


def test_out_naming_a_file_is_one_line(toy_report, tmp_path):
    path = tmp_path / "report.txt"
    path.write_text("mine")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        write_report(toy_report, path, static=False)
    assert path.read_text() == "mine"
