"""Inline SVG line charts for the dashboard: no JavaScript, no network, readable as text.

A chart is a list of :class:`Series` over the same x positions (runs). Each point
is a link (to the run's row on the benchmark's page) with a ``<title>`` tooltip
naming the commit and the numbers; a translucent band shows the noise; dashed
vertical lines mark change points; a red ring marks a regressed point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


@dataclass
class Point:
    x: int  # the run's index
    y: float
    tip: str  # tooltip text
    href: str | None = None
    regressed: bool = False


@dataclass
class Series:
    label: str
    points: list[Point]
    band: tuple[float, float] | None = None  # (low factor, high factor) around each point's level
    steps: list[tuple[int, str]] = field(default_factory=list)  # (x of the change, label)


def _nice_log_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            t = m * 10.0**e
            if lo <= t <= hi:
                ticks.append(t)
    return ticks or [lo, hi]


def _nice_linear_ticks(hi: float) -> list[float]:
    raw = hi / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(hi / step) + 1)]


def _legend_labels(labels: list[str]) -> list[str]:
    """``test_x[a]``, ``test_x[b]`` -> ``[a]``, ``[b]``: the shared test name is the chart's."""
    stems = {label.split("[")[0] for label in labels}
    if len(labels) > 1 and len(stems) == 1 and all("[" in label for label in labels):
        return ["[" + label.split("[", 1)[1] for label in labels]
    return labels


def _fmt(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:.3g}"
    return f"{v:.2g}"


def line_chart(series: list[Series], x_labels: list[str], *, title: str, y_label: str,
               log: bool = True, width: int = 570, height: int = 320, css_class: str = "trend",
               band_label: str = "noise band") -> str:
    left, right, top, bottom = 60, 150, 28, 84
    plot_w, plot_h = width - left - right, height - top - bottom
    ys = [p.y for s in series for p in s.points if p.y > 0]
    if s_band := [s for s in series if s.band]:
        ys += [p.y * s.band[0] for s in s_band for p in s.points if p.y > 0]
        ys += [p.y * s.band[1] for s in s_band for p in s.points if p.y > 0]
    if not ys:
        return f'<svg class="{css_class} empty" width="{width}" height="40"><text x="8" y="24">' \
               f'{escape(title)}: no data</text></svg>'
    lo, hi = min(ys), max(ys)
    if log:
        lo, hi = lo / 1.15, hi * 1.15
        f = (lambda v: math.log(v))  # noqa: E731
    else:
        lo, hi = 0.0, hi * 1.1
        f = (lambda v: v)  # noqa: E731
    span = (f(hi) - f(lo)) or 1.0
    n = max(len(x_labels), 1)

    def px(x: float) -> float:
        return left + (plot_w * (x + 0.5) / n)

    def py(v: float) -> float:
        return top + plot_h * (1 - (f(max(v, lo)) - f(lo)) / span)

    out = [f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}">',
           f'<text class="title" x="{left}" y="18">{escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" '
           f'stroke="#bbb"/>']
    ticks = _nice_log_ticks(lo, hi) if log else _nice_linear_ticks(hi)
    for t in ticks:
        y = py(t)
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#eee"/><text class="tick" x="{left - 6}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{_fmt(t)}</text>')
    step = max(1, math.ceil(n / 12))
    for i, label in enumerate(x_labels):
        if i % step == 0 or i == n - 1:
            x = px(i)
            out.append(f'<text class="tick" transform="translate({x:.1f},{top + plot_h + 12}) '
                       f'rotate(30)" text-anchor="start">{escape(label)}</text>')
    out.append(f'<text class="axis" transform="translate(14,{top + plot_h / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle">{escape(y_label)}</text>')
    legend = _legend_labels([s.label for s in series])
    for k, s in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        pts = [p for p in s.points if p.y > 0]
        if s.band and pts:
            upper = " ".join(f"{px(p.x):.1f},{py(p.y * s.band[1]):.1f}" for p in pts)
            lower = " ".join(f"{px(p.x):.1f},{py(p.y * s.band[0]):.1f}" for p in reversed(pts))
            out.append(f'<polygon class="band" points="{upper} {lower}" fill="{color}" '
                       f'fill-opacity="0.12" stroke="none"><title>{escape(s.label)}: '
                       f'{escape(band_label)}</title></polygon>')
        if len(pts) > 1:
            path = " ".join(f"{px(p.x):.1f},{py(p.y):.1f}" for p in pts)
            out.append(f'<polyline class="line" points="{path}" fill="none" stroke="{color}" '
                       f'stroke-width="1.8"/>')
        for x, label in s.steps:
            xx = px(x - 0.5)
            out.append(f'<line class="change-point" x1="{xx:.1f}" x2="{xx:.1f}" y1="{top}" '
                       f'y2="{top + plot_h}" stroke="{color}" stroke-dasharray="5,4">'
                       f'<title>{escape(label)}</title></line>')
            out.append(f'<text class="cp-label" x="{xx + 3:.1f}" y="{top + 12}" fill="{color}">'
                       f'{escape(label.split(" at ")[0])}</text>')
        for p in pts:
            dot = (f'<circle class="point" cx="{px(p.x):.1f}" cy="{py(p.y):.1f}" r="3.5" '
                   f'fill="{color}"><title>{escape(p.tip)}</title></circle>')
            if p.regressed:
                dot += (f'<circle class="regressed" cx="{px(p.x):.1f}" cy="{py(p.y):.1f}" r="9" '
                        f'fill="none" stroke="#d00" stroke-width="2.5"><title>regressed: '
                        f'{escape(p.tip)}</title></circle>')
            out.append(f'<a href="{escape(p.href)}">{dot}</a>' if p.href else dot)
        ly = top + 14 + 16 * k
        out.append(f'<rect x="{left + plot_w + 10}" y="{ly - 9}" width="12" height="3" '
                   f'fill="{color}"/><text class="legend" x="{left + plot_w + 26}" y="{ly - 4}">'
                   f'{escape(legend[k][:20])}</text>')
    out.append("</svg>")
    return "\n".join(out)
