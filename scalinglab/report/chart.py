"""The report's chart model: a figure as titled panels of point, line and band series.

Figure data (:mod:`.figures`, and a family's own figures) lays itself out as
a :class:`Chart`; :mod:`.html` draws it as inline SVG and :mod:`.static`
with matplotlib. Nothing here depends on what a study measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Series:
    """One thing drawn in a panel: points (optionally with error bars), a line, or a band."""

    name: str  # legend entry (series with the same name share one entry)
    x: tuple[float, ...]
    y: tuple[float, ...]  # for a band: unused (lo and hi are drawn)
    kind: str = "points"  # "points" | "line" | "band"
    color: str = "#333333"
    lo: tuple[float, ...] | None = None  # error bar (points) or lower edge (band)
    hi: tuple[float, ...] | None = None
    tips: tuple[str, ...] | None = None  # hover text: one per point, or one for a line
    marker: str = "o"  # "o" circle, "s" square, "d" diamond, "^" triangle, "x" cross
    hollow: bool = False
    dash: bool = False
    size: float = 1.0  # relative marker size / line width
    legend: bool = True  # listed in the legend (else it toggles with ``group``)
    group: str | None = None  # legend entry this series toggles with; default its own name

    @property
    def toggle(self) -> str:
        return self.group or self.name


@dataclass(frozen=True, slots=True)
class Panel:
    """One set of axes."""

    title: str
    xlabel: str
    ylabel: str
    series: tuple[Series, ...]
    xlog: bool = True
    ylog: bool = True
    note: str = ""  # shown under the panel (or in it, when it has no data)


@dataclass(frozen=True, slots=True)
class Table:
    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Chart:
    """A figure as the renderers see it: titled panels, notes and tables."""

    key: str  # file stem and HTML id
    title: str
    question: str  # what the figure answers, in a sentence
    panels: tuple[Panel, ...]
    columns: int = 2  # panels per row
    notes: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()

    def legend(self) -> list[Series]:
        """The first series of each legend entry, in drawing order."""
        seen: dict[str, Series] = {}
        for panel in self.panels:
            for s in panel.series:
                if s.legend and s.toggle not in seen:
                    seen[s.toggle] = s
        return list(seen.values())

    def plot(self):
        """A matplotlib Figure of this chart (for notebooks)."""
        from scalinglab.report.static import draw_chart

        return draw_chart(self)

    def _repr_html_(self) -> str:
        from scalinglab.report.html import chart_html

        return chart_html(self)


def values(v) -> tuple[float, ...]:
    """A column or array as the float tuple a :class:`Series` holds."""
    return tuple(float(x) for x in np.asarray(v, dtype=float))


def palette(keys, cmap: str = "viridis", lo: float = 0.0, hi: float = 0.9) -> dict:
    """Colours (hex) for sorted distinct ``keys`` along a matplotlib colormap."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    keys = sorted(set(keys))
    cm = colormaps[cmap]
    n = max(len(keys) - 1, 1)
    return {k: to_hex(cm(lo + (hi - lo) * i / n)) for i, k in enumerate(keys)}


GROUP_COLORS = ("#1f5fa8", "#c8372d", "#2f8f4e", "#8a4fb0", "#b8860b")
FRONTIER_COLOR = "#111111"
FIT_COLOR = "#d1495b"
N_COLOR, D_COLOR = "#1f5fa8", "#d97b16"
GREY = "#888888"


def group_colors(labels) -> dict:
    """One fixed colour per group label, in order."""
    return {g: GROUP_COLORS[i % len(GROUP_COLORS)] for i, g in enumerate(dict.fromkeys(labels))}
