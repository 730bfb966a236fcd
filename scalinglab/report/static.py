"""The static renderer: a :class:`~scalinglab.report.chart.Chart` as a matplotlib figure (PNG, SVG).

Uses ``matplotlib.figure.Figure`` directly (no pyplot state, Agg canvas), so
it is safe inside a sweep process and in notebooks alike.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from scalinglab.errors import DataError
from scalinglab.report.chart import Chart, Panel, Series

PANEL_INCHES = (4.7, 3.5)
DPI = 110
_MARKERS = {"o": "o", "s": "s", "d": "D", "^": "^", "x": "x"}


def _finite(s: Series, *arrays, xlog: bool, ylog: bool):
    x = np.asarray(s.x, dtype=float)
    ok = np.isfinite(x) & ((x > 0) | (not xlog))
    for a in arrays:
        a = np.asarray(a, dtype=float)
        ok &= np.isfinite(a) & ((a > 0) | (not ylog))
    return ok


def _draw_series(ax, s: Series, panel: Panel) -> None:
    x = np.asarray(s.x, dtype=float)
    if s.kind == "band":
        lo, hi = np.asarray(s.lo, dtype=float), np.asarray(s.hi, dtype=float)
        ok = _finite(s, lo, hi, xlog=panel.xlog, ylog=panel.ylog)
        ax.fill_between(x[ok], lo[ok], hi[ok], color=s.color, alpha=0.16, lw=0, zorder=1)
        return
    y = np.asarray(s.y, dtype=float)
    ok = _finite(s, y, xlog=panel.xlog, ylog=panel.ylog)
    if s.kind == "line":
        ax.plot(np.where(ok, x, np.nan), np.where(ok, y, np.nan), color=s.color, lw=1.4 * s.size,
                ls="--" if s.dash else "-", zorder=2)
        return
    if s.lo is not None and s.hi is not None:
        lo, hi = np.asarray(s.lo, dtype=float), np.asarray(s.hi, dtype=float)
        eok = ok & _finite(s, lo, hi, xlog=panel.xlog, ylog=panel.ylog)
        if eok.any():
            # bars from lo to hi as given: a percentile interval need not contain its point estimate
            ax.vlines(x[eok], lo[eok], hi[eok], colors=s.color, alpha=0.5, lw=0.8, zorder=2)
    face = "none" if s.hollow else s.color
    ax.plot(x[ok], y[ok], ls="none", marker=_MARKERS.get(s.marker, "o"), ms=5.0 * s.size, mfc=face, mec=s.color,
            mew=1.6 if s.marker == "x" else (1.2 if s.hollow else 0.4), zorder=3)


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def log_label(v: float) -> str:
    """The HTML renderer's tick label in plain Unicode (1e10 -> 10¹⁰): no mathtext, which is slow."""
    from scalinglab.report.html import tick_parts

    if v <= 0:
        return ""
    text, e = tick_parts(v)
    return text if e is None else text + str(e).translate(_SUPERSCRIPT)


def _log_axis(axis, lo: float, hi: float) -> None:
    """The HTML renderer's ticks on a matplotlib log axis."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    from scalinglab.report.html import log_ticks

    major, minor = log_ticks(lo, hi)
    axis.set_major_locator(FixedLocator(major))
    axis.set_major_formatter(FuncFormatter(lambda v, _: log_label(v)))
    axis.set_minor_locator(FixedLocator(minor))
    axis.set_minor_formatter(NullFormatter())


def draw_panel(ax, panel: Panel) -> None:
    """Draw one panel onto matplotlib axes."""
    for s in sorted(panel.series, key=lambda s: {"band": 0, "line": 1, "points": 2}[s.kind]):
        _draw_series(ax, s, panel)
    if panel.series:
        from scalinglab.report.html import data_range

        for axis, log, name in ((ax.xaxis, panel.xlog, "x"), (ax.yaxis, panel.ylog, "y")):
            lo, hi = data_range(panel, name)
            (ax.set_xlim if name == "x" else ax.set_ylim)(lo, hi)
            if log:
                (ax.set_xscale if name == "x" else ax.set_yscale)("log")
                _log_axis(axis, lo, hi)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(0.5, 0.5, "\n".join(textwrap.wrap(panel.note or "nothing to draw", 48)), ha="center",
                va="center", fontsize=8, color="#5b6670", transform=ax.transAxes)
    ax.set_title(panel.title, fontsize=9.5)
    ax.set_xlabel(panel.xlabel, fontsize=9)
    ax.set_ylabel(panel.ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, which="major", color="#eef1f3", lw=0.8)
    ax.set_axisbelow(True)


def _handle(s: Series):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if s.kind == "band":
        return Patch(color=s.color, alpha=0.25)
    if s.kind == "line":
        return Line2D([], [], color=s.color, lw=1.4 * s.size, ls="--" if s.dash else "-")
    return Line2D([], [], ls="none", marker=_MARKERS.get(s.marker, "o"), ms=5.0 * min(s.size, 1.3),
                  mfc="none" if s.hollow else s.color, mec=s.color)


def draw_chart(chart: Chart, *, dpi: int = DPI):
    """A matplotlib Figure of ``chart``: its panels in a grid, one shared legend below."""
    from matplotlib.figure import Figure

    n = len(chart.panels)
    cols = max(1, min(chart.columns, n))
    rows = max(1, math.ceil(n / cols))
    entries = chart.legend()
    w, h = PANEL_INCHES
    longest = max((len(s.name) for s in entries), default=0)
    column_inches = 0.45 + 0.058 * longest  # marker + text at 7.5 pt
    legend_cols = max(1, min(len(entries), int(w * cols // column_inches)))
    legend_rows = math.ceil(len(entries) / legend_cols) if entries else 0
    fig = Figure(figsize=(w * cols, h * rows + 0.5 + 0.22 * legend_rows), dpi=dpi, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, panel in zip(axes.flat, chart.panels):
        draw_panel(ax, panel)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(chart.title, fontsize=11.5, fontweight="bold")
    if entries:
        fig.legend([_handle(s) for s in entries], [s.name for s in entries], loc="outside lower center",
                   ncol=legend_cols, fontsize=7.5, frameon=False)
    return fig


def save_chart(chart: Chart, folder: str | Path, *, formats: tuple[str, ...] = ("png", "svg"),
               dpi: int = DPI) -> list[Path]:
    """Write ``chart`` as ``folder/<key>.<format>`` for each format; returns the paths."""
    import io

    import matplotlib

    from scalinglab.safe_io import write_bytes_atomic

    folder = Path(folder)
    fig = draw_chart(chart, dpi=dpi)
    paths = []
    try:
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": chart.key}):
            for fmt in formats:
                buf = io.BytesIO()  # written atomically: a link planted at the path is replaced, not followed
                fig.savefig(buf, format=fmt, metadata={"Date": None} if fmt == "svg" else {"Software": "scalinglab"})
                paths.append(write_bytes_atomic(folder, f"{chart.key}.{fmt}", buf.getvalue()))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot write figure {chart.key} to {folder}: {exc}") from None
    return paths
