"""The HTML renderer: charts as inline SVG, the report as one self-contained page.

Every chart is drawn here in Python as SVG markup, so the page shows its
figures with no script at all; a few lines of vanilla JavaScript (in
``assets/report.js``, inlined) add hover tooltips and legend toggling. No CDN,
no third-party chart library: the file renders offline.

All text that can come from the database (study name, run labels, config
values, notes) passes through :func:`html.escape` on its way into the page.
"""

from __future__ import annotations

import html
import json
import math
from importlib import resources
from typing import Any

import numpy as np

from scalinglab.report.chart import Chart, Panel, Series, Table

PANEL_W, PANEL_H = 460, 320  # SVG user units of one panel
M_LEFT, M_RIGHT, M_TOP, M_BOTTOM = 64, 14, 12, 46  # plot-area margins
MARKER_R = 3.4  # marker radius at size 1


def esc(text: Any) -> str:
    """Escape text for an HTML text node or a quoted attribute."""
    return html.escape(str(text), quote=True)


def _asset(name: str) -> str:
    return resources.files("scalinglab.report").joinpath("assets", name).read_text(encoding="utf-8")


# ===================================================================== axes

class _Scale:
    """Data value -> SVG coordinate along one axis (log or linear)."""

    def __init__(self, lo: float, hi: float, log: bool, a: float, b: float):
        self.log, self.a, self.b = log, a, b
        self.lo, self.hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)

    def __call__(self, v: float) -> float:
        t = math.log10(v) if self.log else v
        return self.a + (t - self.lo) / (self.hi - self.lo) * (self.b - self.a)


def _values(panel: Panel, axis: str, log: bool) -> np.ndarray:
    """Finite (and, on a log axis, positive) values of the panel along ``axis``; bands only if alone."""
    vals = []
    for s in panel.series:
        if s.kind == "band" and any(t.kind != "band" for t in panel.series):
            continue
        if axis == "x":
            vals.extend(s.x)
        else:
            if s.kind != "band":
                vals.extend(s.y)
            for edge in (s.lo, s.hi):
                if edge is not None:
                    vals.extend(edge)
    v = np.asarray(vals, dtype=float)
    v = v[np.isfinite(v)]
    return v[v > 0] if log else v


def data_range(panel: Panel, axis: str) -> tuple[float, float]:
    """Padded axis limits: 4% of the span each side (in log space on a log axis)."""
    log = panel.xlog if axis == "x" else panel.ylog
    v = _values(panel, axis, log)
    if v.size == 0:
        return (1.0, 10.0) if log else (0.0, 1.0)
    lo, hi = float(v.min()), float(v.max())
    if log:
        llo, lhi = math.log10(lo), math.log10(hi)
        pad = 0.04 * (lhi - llo) if lhi > llo else 0.3
        return 10 ** (llo - pad), 10 ** (lhi + pad)
    pad = 0.04 * (hi - lo) if hi > lo else max(abs(lo) * 0.1, 0.5)
    return lo - pad, hi + pad


def linear_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[float]]:
    """(labelled, minor) ticks of a log axis between ``lo`` and ``hi``."""
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    span = math.log10(hi / lo)
    inside = lambda v: lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)  # noqa: E731
    if span > 1.3:
        step = max(1, math.ceil(span / 7))
        major = [10.0 ** e for e in range(e0, e1 + 1) if e % step == 0 and inside(10.0 ** e)]
        minor = [m * 10.0 ** e for e in range(e0, e1 + 1) for m in range(2, 10) if inside(m * 10.0 ** e)]
        if step > 1:
            minor = [10.0 ** e for e in range(e0, e1 + 1) if e % step and inside(10.0 ** e)]
        if len(major) >= 2:
            return major, minor
    mults = ((1, 2, 5) if span > 1.3 else (1, 1.5, 2, 3, 5, 7) if span > 0.4
             else (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8))
    major = [m * 10.0 ** e for e in range(e0, e1 + 1) for m in mults if inside(m * 10.0 ** e)]
    if len(major) < 2:
        major = [v for v in linear_ticks(lo, hi, 4) if v > 0]
    return major, []


def tick_parts(v: float) -> tuple[str, int | None]:
    """A tick value as (text, exponent): ``("0.05", None)``, ``("15k", None)``, ``("2×10", 11)``."""
    if v == 0:
        return "0", None
    if 1e-3 <= abs(v) < 1e4:
        return f"{v:.6g}", None
    if 1e4 <= abs(v) < 1e6:
        return f"{v / 1e3:.6g}k", None
    e = math.floor(math.log10(abs(v)) + 1e-9)
    m = v / 10 ** e
    return ("10" if abs(m - 1) < 1e-6 else f"{m:.3g}×10"), e


def tick_label(v: float) -> str:
    """SVG text content of a tick label, the exponent as a superscript."""
    text, e = tick_parts(v)
    return esc(text) if e is None else f'{esc(text)}<tspan dy="-6" font-size="9">{e}</tspan>'


# ===================================================================== marks

def _marker(shape: str, x: float, y: float, r: float) -> str:
    if shape == "s":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}"'
    if shape == "d":
        r *= 1.25
        return f'<path d="M{x:.1f} {y - r:.1f}L{x + r:.1f} {y:.1f}L{x:.1f} {y + r:.1f}L{x - r:.1f} {y:.1f}Z"'
    if shape == "^":
        r *= 1.2
        return f'<path d="M{x:.1f} {y - r:.1f}L{x + r:.1f} {y + 0.8 * r:.1f}L{x - r:.1f} {y + 0.8 * r:.1f}Z"'
    if shape == "x":
        return (f'<path d="M{x - r:.1f} {y - r:.1f}L{x + r:.1f} {y + r:.1f}M{x - r:.1f} {y + r:.1f}'
                f'L{x + r:.1f} {y - r:.1f}"')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}"'


def _paint(s: Series) -> str:
    """Fill and stroke attributes of a marker."""
    color = esc(s.color)
    if s.marker == "x":
        return f' fill="none" stroke="{color}" stroke-width="{1.8 * s.size:.1f}"'
    if s.hollow:
        return f' fill="none" stroke="{color}" stroke-width="1.5"'
    return f' fill="{color}" stroke="#ffffff" stroke-width="0.6"'


def _ok(v: float, log: bool) -> bool:
    return math.isfinite(v) and (v > 0 or not log)


def _path(xs, ys, sx: _Scale, sy: _Scale, xlog: bool, ylog: bool) -> str:
    """An SVG path through the drawable points, broken where a value is missing."""
    parts, pen = [], "M"
    for x, y in zip(xs, ys):
        if _ok(x, xlog) and _ok(y, ylog):
            parts.append(f"{pen}{sx(x):.1f} {sy(y):.1f}")
            pen = "L"
        else:
            pen = "M"
    return "".join(parts)


def _series_svg(s: Series, sx: _Scale, sy: _Scale, panel: Panel, attrs: str) -> str:
    xlog, ylog = panel.xlog, panel.ylog
    color = esc(s.color)
    if s.kind == "band":
        upper = _path(s.x, s.hi, sx, sy, xlog, ylog)
        lower = _path(s.x[::-1], s.lo[::-1], sx, sy, xlog, ylog)
        if not upper or not lower:
            return ""
        return f'<path class="band" d="{upper}L{lower[1:]}Z" fill="{color}" fill-opacity="0.16"{attrs}/>'
    if s.kind == "line":
        d = _path(s.x, s.y, sx, sy, xlog, ylog)
        if not d:
            return ""
        dash = ' stroke-dasharray="5 4"' if s.dash else ""
        tip = f' data-tip="{esc(s.tips[0])}"' if s.tips else ""
        return (f'<path class="line" d="{d}" fill="none" stroke="{color}" stroke-width="{1.6 * s.size:.1f}"'
                f' stroke-linejoin="round"{dash}{tip}{attrs}/>')
    out = [f"<g{attrs}>"]
    if s.lo is not None and s.hi is not None:
        bars = [f"M{sx(x):.1f} {sy(lo):.1f}V{sy(hi):.1f}" for x, lo, hi in zip(s.x, s.lo, s.hi)
                if _ok(x, xlog) and _ok(lo, ylog) and _ok(hi, ylog)]
        if bars:
            out.append(f'<path class="err" d="{"".join(bars)}" stroke="{color}" stroke-opacity="0.55" '
                       f'stroke-width="1.1" fill="none"/>')
    r = MARKER_R * s.size
    for i, (x, y) in enumerate(zip(s.x, s.y)):
        if not (_ok(x, xlog) and _ok(y, ylog)):
            continue
        tip = f' data-tip="{esc(s.tips[i])}"' if s.tips and i < len(s.tips) else ""
        out.append(f'{_marker(s.marker, sx(x), sy(y), r)} class="pt"{_paint(s)}{tip}/>')
    out.append("</g>")
    return "".join(out)


def panel_svg(panel: Panel, toggles: dict[str, int], clip_id: str) -> str:
    """One panel as a standalone ``<svg class="chart-panel">`` element."""
    x0, x1 = M_LEFT, PANEL_W - M_RIGHT
    y0, y1 = PANEL_H - M_BOTTOM, M_TOP
    xlo, xhi = data_range(panel, "x")
    ylo, yhi = data_range(panel, "y")
    sx, sy = _Scale(xlo, xhi, panel.xlog, x0, x1), _Scale(ylo, yhi, panel.ylog, y0, y1)
    label = f"{panel.title}: {panel.ylabel} against {panel.xlabel}"
    out = [f'<svg class="chart-panel" viewBox="0 0 {PANEL_W} {PANEL_H}" role="img" aria-label="{esc(label)}" '
           f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="11">']
    if not panel.series:
        out.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="#f7f8f9" stroke="#dde2e6" '
                   f'stroke-dasharray="4 4"/><text x="{(x0 + x1) / 2:.0f}" y="{(y0 + y1) / 2:.0f}" '
                   'text-anchor="middle" fill="#5b6670">nothing to draw: see the note below</text></svg>')
        return "".join(out)
    out += [f'<defs><clipPath id="{clip_id}"><rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}"/>'
            f'</clipPath></defs>',
            f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="#ffffff" stroke="#c9d0d6"/>']
    # grid and ticks
    for axis, (lo, hi, log) in (("x", (xlo, xhi, panel.xlog)), ("y", (ylo, yhi, panel.ylog))):
        major, minor = log_ticks(lo, hi) if log else (linear_ticks(lo, hi), [])
        for v in minor:
            if axis == "x":
                out.append(f'<line x1="{sx(v):.1f}" x2="{sx(v):.1f}" y1="{y0}" y2="{y0 + 3}" stroke="#9aa4ad"/>')
            else:
                out.append(f'<line x1="{x0 - 3}" x2="{x0}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#9aa4ad"/>')
        for v in major:
            if not lo <= v <= hi:
                continue
            if axis == "x":
                p = sx(v)
                out.append(f'<line x1="{p:.1f}" x2="{p:.1f}" y1="{y1}" y2="{y0}" stroke="#eef1f3"/>'
                           f'<line x1="{p:.1f}" x2="{p:.1f}" y1="{y0}" y2="{y0 + 5}" stroke="#5b6670"/>'
                           f'<text x="{p:.1f}" y="{y0 + 18}" text-anchor="middle" fill="#3b444b">'
                           f'{tick_label(v)}</text>')
            else:
                p = sy(v)
                out.append(f'<line x1="{x0}" x2="{x1}" y1="{p:.1f}" y2="{p:.1f}" stroke="#eef1f3"/>'
                           f'<line x1="{x0 - 5}" x2="{x0}" y1="{p:.1f}" y2="{p:.1f}" stroke="#5b6670"/>'
                           f'<text x="{x0 - 8}" y="{p + 4:.1f}" text-anchor="end" fill="#3b444b">'
                           f'{tick_label(v)}</text>')
    out.append(f'<text x="{(x0 + x1) / 2:.0f}" y="{PANEL_H - 8}" text-anchor="middle" fill="#1d2327">'
               f'{esc(panel.xlabel)}</text>')
    out.append(f'<text transform="translate(14 {(y0 + y1) / 2:.0f}) rotate(-90)" text-anchor="middle" '
               f'fill="#1d2327">{esc(panel.ylabel)}</text>')
    # data, bands first so marks sit on top
    out.append(f'<g clip-path="url(#{clip_id})">')
    order = sorted(panel.series, key=lambda s: {"band": 0, "line": 1, "points": 2}[s.kind])
    for s in order:
        key = toggles.get(s.toggle)
        attrs = f' data-s="{key}"' if key is not None else ""
        out.append(_series_svg(s, sx, sy, panel, attrs))
    out.append("</g></svg>")
    return "".join(out)


# ===================================================================== charts

def _swatch(s: Series) -> str:
    color = esc(s.color)
    if s.kind == "band":
        mark = f'<rect x="2" y="3" width="20" height="8" fill="{color}" fill-opacity="0.25"/>'
    elif s.kind == "line":
        dash = ' stroke-dasharray="4 3"' if s.dash else ""
        mark = f'<path d="M2 7H22" stroke="{color}" stroke-width="{1.6 * s.size:.1f}"{dash}/>'
    else:
        mark = f'{_marker(s.marker, 12, 7, MARKER_R * min(s.size, 1.3))}{_paint(s)}/>'
    return f'<svg class="swatch" width="24" height="14" viewBox="0 0 24 14" aria-hidden="true">{mark}</svg>'


def legend_html(chart: Chart, toggles: dict[str, int]) -> str:
    entries = chart.legend()
    if not entries:
        return ""
    items = [f'<button type="button" class="legend-item" data-s="{toggles[s.toggle]}" aria-pressed="true" '
             f'title="click: hide/show; double-click: show only this">{_swatch(s)}<span>{esc(s.name)}</span></button>'
             for s in entries]
    items.append('<button type="button" class="legend-all" title="show every series">show all</button>')
    return f'<div class="legend" role="group" aria-label="legend: click to hide or show">{"".join(items)}</div>'


def table_html(table: Table, *, fold_above: int = 12) -> str:
    """A table; one longer than ``fold_above`` rows is folded under its caption."""
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in table.rows)
    if len(table.rows) > fold_above:
        return (f'<details class="table-wrap"><summary>{esc(table.caption)} ({len(table.rows)} rows)</summary>'
                f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></details>")
    return (f'<div class="table-wrap"><table><caption>{esc(table.caption)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def chart_html(chart: Chart, files: list[str] | None = None) -> str:
    """A chart as an HTML ``<section>``: question, panels (inline SVG), legend, notes, tables."""
    toggles = {s.toggle: i for i, s in enumerate(chart.legend())}
    figs = []
    for i, panel in enumerate(chart.panels):
        note = f'<p class="panel-note">{esc(panel.note)}</p>' if panel.note else ""
        figs.append(f'<figure class="panel"><figcaption>{esc(panel.title)}</figcaption>'
                    f'{panel_svg(panel, toggles, f"clip-{esc(chart.key)}-{i}")}{note}</figure>')
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in chart.notes)
    tables = "".join(table_html(t) for t in chart.tables)
    links = ""
    if files:
        links = ('<p class="files">Static copies: ' + " · ".join(
            f'<a href="{esc(f)}">{esc(f.rsplit(".", 1)[-1].upper())}</a>' for f in files) + "</p>")
    return (f'<section class="chart" id="{esc(chart.key)}" data-chart="{esc(chart.key)}">'
            f'<h2>{esc(chart.title)}</h2><p class="question">{esc(chart.question)}</p>'
            f'{legend_html(chart, toggles)}'
            f'<div class="panels" style="--cols: {max(1, min(chart.columns, len(chart.panels)))}">{"".join(figs)}</div>'
            f"{notes}{tables}{links}</section>")


# ===================================================================== the page

def jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy scalars to Python, NaN/inf to None, DataFrames to records."""
    import pandas as pd

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element: no '<' can close it early."""
    return (json.dumps(jsonable(data), ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def summary_html(report) -> str:
    """The summary section: the same words as ``StudyAnalysis.summary_text()``, as HTML."""
    s = report.summary
    findings = "".join(f"<p>{esc(p)}</p>" for p in s.findings)
    comparison = f"<p>{esc(s.comparison)}</p>" if s.comparison else ""
    allocation = table_html(Table("Compute-optimal allocation implied by the Approach 1 fits (N_opt = N_coef·C^a, "
                                  "D_opt = D_coef·C^b) and the loss the frontier law predicts there, with its "
                                  "intervals for the mean law and for one new run",
                                  s.allocation_columns, s.allocation)) if s.allocation else ""
    allocation += "".join(table_html(Table(*t)) for t in s.tables)
    uncertain = "".join(f"<li>{esc(u)}</li>" for u in s.uncertain)
    return (f'<section class="summary" id="summary"><h2>Summary</h2>{findings}{comparison}'
            f"{allocation}<h3>What is uncertain</h3><ul>{uncertain}</ul></section>")


def provenance_html(report) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in report.provenance.rows)
    grid = esc(json.dumps(jsonable(report.provenance.design), indent=1, ensure_ascii=False))
    return (f'<section class="provenance" id="provenance"><h2>How the study was run</h2>'
            f'<div class="table-wrap"><table class="kv"><tbody>{rows}</tbody></table></div>'
            f"<details><summary>Design as stored</summary><pre>{grid}</pre></details></section>")


def render_report(report, *, charts: list[Chart] | None = None, files: dict[str, list[str]] | None = None,
                  data_files: dict[str, str] | None = None) -> str:
    """The whole report as one HTML document (CSS and JS inline, no external requests).

    ``data_files`` maps each group's label to its points CSV (relative path).
    """
    charts = charts if charts is not None else report.charts()
    files = files or {}
    sa = report.analysis
    title = f"Scaling study {sa.study}"
    nav = "".join(f'<a href="#{esc(c.key)}">{esc(c.title)}</a>' for c in charts)
    missing = ""
    if report.missing:
        missing = ('<section class="missing"><h2>Not shown</h2><ul>' + "".join(
            f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in report.missing.items()) + "</ul></section>")
    reproduce = ""
    if data_files:
        cmds = "\n".join(c for g in sa.groups if g.label in data_files
                         for c in g.fit_commands(data_files[g.label], sa.settings))
        reproduce = ('<section class="reproduce" id="reproduce"><h2>Reproduce the numbers</h2><p>The seed-mean '
                     "settings behind every fit are saved next to this page; each command prints the same "
                     f"estimates and intervals as this page (the same fit_law call):</p><pre>{esc(cmds)}</pre>"
                     "<p>All numbers of this page are also in <code>report.json</code>.</p></section>")
    body = "".join(chart_html(c, files.get(c.key)) for c in charts)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="scalinglab report">
<title>{esc(title)}</title>
<style>{_asset("report.css")}</style>
</head>
<body data-js="pending">
<header><div class="wrap"><h1>{esc(title)}</h1>
<p class="sub">{esc(f"{sa.family} · {sum(sa.status.values())} runs from {report.db}")} · <a href="#provenance">how it was run</a></p>
<nav><a href="#summary">Summary</a>{nav}<a href="#provenance">Provenance</a></nav></div></header>
<main class="wrap">
<pre id="js-errors" hidden></pre>
{summary_html(report)}
{body}
{missing}
{provenance_html(report)}
{reproduce}
</main>
<div id="tooltip" role="tooltip" hidden></div>
<script type="application/json" id="report-data">{_script_json(report.to_dict())}</script>
<script>{_asset("report.js")}</script>
</body>
</html>
"""
