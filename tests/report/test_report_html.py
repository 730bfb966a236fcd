"""The written report: files, a self-contained page, escaped text, and numbers equal to `scalinglab fit`."""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree

import pandas as pd
import pytest
from report_synthetic import INJECT, NOTE

from scalinglab.cli import main
from scalinglab.report.chart import Chart, Panel, Series
from scalinglab.report.html import chart_html, log_ticks, panel_svg, tick_label
from scalinglab.report.static import log_label


def test_report_writes_page_figures_numbers_and_data(report, written):
    out = written.parent
    assert written.name == "report.html"
    for chart in report.charts():
        for ext in ("png", "svg"):
            f = out / "figures" / f"{chart.key}.{ext}"
            assert f.stat().st_size > 1000, f
        assert f'href="figures/{chart.key}.png"' in written.read_text()
    numbers = json.loads((out / "report.json").read_text())
    assert numbers["figures"] == [c.key for c in report.charts()]
    frontier = report.analysis.groups[0].fits["frontier"]
    assert numbers["analysis"]["groups"][0]["fits"]["frontier"] == frontier.to_dict()
    points = pd.read_csv(out / "data" / "points-dropout-0.csv")
    assert len(points) == len(report.analysis.groups[0].points)


@pytest.mark.parametrize("which", ["written", "lm_written", "toy_written"])
def test_page_is_self_contained(which, request):
    page = request.getfixturevalue(which).read_text()
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # no CDN, no fonts, no trackers
    assert not re.search(r"<(link|img|iframe|object)\b|<script[^>]*\bsrc=", page)  # nothing fetched


def test_every_panel_is_an_inline_svg(report, written):
    page = written.read_text()
    charts = report.charts()
    assert page.count('<svg class="chart-panel"') == sum(len(c.panels) for c in charts)
    assert page.count('<section class="chart"') == len(charts)
    assert page.count('<script') == 2  # the JSON data and the page's own script; nothing injected
    svgs = re.findall(r'<svg class="chart-panel".*?</svg>', page, flags=re.S)
    for svg in svgs:
        ElementTree.fromstring(svg)  # well-formed XML: each panel also works as a standalone SVG


def test_text_from_the_database_is_escaped(written):
    page = written.read_text()
    assert INJECT not in page and NOTE not in page
    assert "&lt;script&gt;document.title=&quot;INJECTED&quot;&lt;/script&gt;" in page  # study name, config value
    assert "&lt;img src=x onerror=" in page  # the study's note
    data = page.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and json.loads(data)["study"].endswith(INJECT)


def test_panel_svg_escapes_labels_and_tips():
    evil = "<b>&\"'"
    panel = Panel(evil, evil, evil, (Series(evil, (1.0, 10.0), (2.0, 3.0), tips=(evil, evil)),))
    svg = panel_svg(panel, {evil: 0}, "clip-x")
    assert "<b>" not in svg and "&lt;b&gt;&amp;&quot;&#x27;" in svg
    html = chart_html(Chart("k", evil, evil + "?", (panel,)))
    assert "<b>" not in html


def test_log_ticks_and_labels():
    major, minor = log_ticks(3e8, 7e12)
    assert major == [1e9, 1e10, 1e11, 1e12] and 2e9 in minor
    major, _ = log_ticks(0.04, 0.21)
    assert major == pytest.approx([0.05, 0.07, 0.1, 0.15, 0.2])
    assert tick_label(1e10) == '10<tspan dy="-6" font-size="9">10</tspan>'
    assert tick_label(0.05) == "0.05" and tick_label(1.5e4) == "15k" and tick_label(2e6).startswith("2×10")
    assert log_label(3e11) == "3×10¹¹" and log_label(1e-4) == "10⁻⁴"


def run_cli(capsys, *argv, codes=(0,)):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code in codes, err
    return out


def fit_json(capsys, *argv) -> dict:
    """`scalinglab fit ... --json` (exit 1 only says some interval is not supported by the data)."""
    return json.loads(run_cli(capsys, "fit", *argv, "--json", codes=(0, 1)))


def _close(theirs, mine) -> bool:
    """Equal to 1e-9 relative, None (a non-finite number in the JSON) only where the other is None too."""
    if mine is None or theirs is None:
        return mine is theirs
    return theirs == pytest.approx(mine, rel=1e-9)


def _same(fit_json: dict, mine: dict) -> None:
    for part in ("params", "derived"):
        assert fit_json[part].keys() == mine[part].keys()
        assert all(_close(fit_json[part][k], v) for k, v in mine[part].items()), part
    for k, iv in mine["intervals"].items():
        assert fit_json["intervals"][k]["supported"] == iv["supported"], k
        assert _close(fit_json["intervals"][k]["lo"], iv["lo"]) and _close(fit_json["intervals"][k]["hi"], iv["hi"]), k


@pytest.mark.parametrize("study", ["STUDY", pytest.param("LM_STUDY", marks=pytest.mark.slow),
                                   pytest.param("TOY_STUDY", marks=pytest.mark.slow)])
def test_report_cli_numbers_equal_the_fit_cli(study, study_db, tmp_path, capsys):
    """`scalinglab report`, then `scalinglab fit` on the saved points: the same estimates and intervals."""
    import report_synthetic

    out = tmp_path / "cli"
    msg = run_cli(capsys, "report", "--db", study_db, "--study", getattr(report_synthetic, study), "--out", out,
                  "--bootstrap", 40, "--grid", "coarse", "--no-static")
    assert "report written to" in msg and (out / "report.html").exists() and not (out / "figures").exists()
    numbers = json.loads((out / "report.json").read_text())
    page = (out / "report.html").read_text()
    group = numbers["analysis"]["groups"][-1]
    slug = "all" if not group["variant"] else "-".join(f"{k}-{v:g}" for k, v in group["variant"].items())
    points = out / "data" / f"points-{slug}.csv"
    fits = group["fits"]
    at = ("--at-flops", f"{group['at_flops']:.17g}")
    for law, extra in (("frontier", ()), ("approach1", ()), ("isoflop", at)):
        _same(fit_json(capsys, points, "--law", law, "--bootstrap", 40, *extra), fits[law])
    chin = fit_json(capsys, points, "--law", "chinchilla", "--grid", "coarse", "--bootstrap", 40,
                    "--holdout-above", f"{group['holdout_above']:.17g}", *at)
    _same(chin, fits["chinchilla"])
    assert chin["backtest"]["mean_abs_rel_error"] == pytest.approx(fits["chinchilla"]["backtest"]["mean_abs_rel_error"])
    assert f"scalinglab fit data/points-{slug}.csv --law chinchilla --grid coarse" in page  # how to reproduce


def test_report_cli_errors_say_what_to_do(study_db, tmp_path, capsys):
    code = main(["report", "--db", str(tmp_path / "none.db"), "--out", str(tmp_path / "r")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    code = main(["report", "--db", str(study_db), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "choose one with --study" in err and "toy-grid (toy_mlp)" in err
    assert not (tmp_path / "r").exists()
