import pytest

from scalinglab.errors import ConfigError
from scalinglab.families.mnist.grid import PRESETS, MnistGrid, read_grid_file


def test_full_preset_is_the_whole_exercise():
    grid = PRESETS["full"]
    assert len(grid.configs()) == 9 * 7 * 3 * 2
    assert grid.widths == [4, 6, 8, 11, 16, 23, 32, 45, 64]
    assert min(grid.fractions) == 1 / 64 and grid.dropouts == [0.0, 0.2]


def test_fractions_parse_as_ratios():
    grid = MnistGrid.from_dict({"widths": "4,8", "fractions": "1/16, 1/8", "seeds": "0,1"})
    assert grid.fractions == [1 / 16, 1 / 8] and len(grid.configs()) == 8


@pytest.mark.parametrize("d, message", [
    ({"widths": [4, -8], "fractions": [1]}, "width = -8"),
    ({"widths": [4], "fractions": [1.5]}, "fraction = 1.5"),
    ({"widths": [4], "fractions": []}, "fractions is empty"),
    ({"widths": [4], "fractions": ["a half"]}, "fractions: 'a half' is not a number"),
    ({"widths": [4], "fractions": [1], "fraction": [1]}, "unknown setting 'fraction'"),
    ({"widths": [4], "fractions": [1], "seeds": [0, 0]}, "seeds lists a value twice"),
    ({"widths": [4.5], "fractions": [1]}, "widths: 4.5 is not an integer"),
])
def test_bad_grids_name_the_field(d, message):
    with pytest.raises(ConfigError, match=message):
        MnistGrid.from_dict(d)


def test_toml_grid_file(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('widths = [4, 6]\nfractions = ["1/2", 0.25]\ndropouts = [0.0, 0.2]\n')
    grid = MnistGrid.from_dict(read_grid_file(path))
    assert len(grid.configs()) == 8


def test_broken_toml_is_a_clear_error(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text("widths = [4, 6\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_grid_file(path)
    with pytest.raises(ConfigError, match="does not exist"):
        read_grid_file(tmp_path / "missing.toml")
