"""The written report: files, a self-contained page, escaped text, and numbers equal to `scalinglab fit`."""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree

import pandas as pd
import pytest
from report_synthetic import INJECT, NOTE

from scalinglab.cli import main
from scalinglab.report.figures import Chart, Panel, Series
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
    assert numbers["analyses"][0]["fit"]["params"] == report.analysis.dropouts[0].frontier.fit["params"]
    points = pd.read_csv(out / "data" / "points-dropout-0.csv")
    assert len(points) == len(report.analysis.dropouts[0].points)


def test_page_is_self_contained(written):
    page = written.read_text()
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


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_report_cli_numbers_equal_the_fit_cli(study_db, written, tmp_path, capsys):
    """`scalinglab report` and `scalinglab fit` on the saved settings give the same estimates and intervals."""
    out = tmp_path / "cli"
    msg = run_cli(capsys, "report", "--db", study_db, "--out", out, "--bootstrap", 40, "--grid", "coarse",
                  "--no-static")
    assert "report written to" in msg and (out / "report.html").exists() and not (out / "figures").exists()
    numbers = json.loads((out / "report.json").read_text())
    assert numbers["analyses"] == json.loads((written.parent / "report.json").read_text())["analyses"]
    for i, a in enumerate(numbers["analyses"]):
        points = out / "data" / f"points-dropout-{a['dropout']:g}.csv"
        fit = json.loads(run_cli(capsys, "fit", points, "--law", "frontier", "--bootstrap", 40, "--json"))
        for k in ("E", "A", "alpha"):
            assert fit[k] == pytest.approx(a["fit"]["params"][k], rel=1e-9)
            assert fit["ci"][k] == pytest.approx(a["fit"]["ci"][k], rel=1e-9)
        assert fit["approach1"]["a"] == pytest.approx(a["approach1"]["estimate"]["a"], rel=1e-9)
        if i == 0:
            chin = json.loads(run_cli(capsys, "fit", points, "--law", "chinchilla", "--grid", "coarse",
                                      "--bootstrap", 40, "--json"))
            for k in ("E", "A", "B", "alpha", "beta"):
                assert chin[k] == pytest.approx(a["chinchilla"][k], rel=1e-6)
            assert chin["ci"]["alpha"] == pytest.approx(a["chinchilla"]["ci"]["alpha"], rel=1e-6)
            iso = json.loads(run_cli(capsys, "fit", points, "--law", "isoflop", "--bootstrap", 40, "--json"))
            assert iso["a"] == pytest.approx(a["isoflop"]["a"], rel=1e-9)
            assert iso["ci"]["a"] == pytest.approx(a["isoflop"]["ci"]["a"], rel=1e-9)


def test_report_cli_errors_say_what_to_do(tmp_path, capsys):
    code = main(["report", "--db", str(tmp_path / "none.db"), "--out", str(tmp_path / "r")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
