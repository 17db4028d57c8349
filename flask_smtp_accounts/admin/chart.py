"""The dashboard's bar chart, drawn on the server as inline SVG.

No script and no file from elsewhere: the admin works offline and the
chart is in the page's HTML, where a test (and a screen reader, through
each bar's ``<title>``) can read it. Each bar stacks the letters sent
(below) and failed (above) in one step of time.
"""

from __future__ import annotations

import typing as t

from markupsafe import Markup, escape

WIDTH = 720
HEIGHT = 200
#: Room for the axis labels: left (counts), bottom (times).
LEFT = 40
BOTTOM = 24
TOP = 8
SENT_COLOUR = "#28a745"
FAILED_COLOUR = "#dc3545"


class ChartBar(t.Protocol):
    """A bar's two counts; read-only, so that frozen dataclasses (``mail_stats.Bar``) are bars too."""

    @property
    def sent(self) -> int: ...

    @property
    def failed(self) -> int: ...


def bar_chart(
    bars: t.Sequence[ChartBar],
    labels: t.Sequence[str],
    *,
    title: str,
    describe: t.Callable[[ChartBar, str], str],
) -> Markup:
    """An SVG of stacked bars; ``labels`` name each bar's time, ``describe`` its tooltip."""
    peak = max((b.sent + b.failed for b in bars), default=0) or 1
    plot_w = WIDTH - LEFT
    plot_h = HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(bars), 1)
    width = max(slot * 0.8, 1)
    every = max(1, len(bars) // 12)  # at most a dozen time labels, so they never overlap
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sa-chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="100%" style="max-width:{WIDTH}px"><title>{escape(title)}</title>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH}" y2="{TOP + plot_h}" stroke="#999"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end" font-size="11">{peak}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    for i, (bar, label) in enumerate(zip(bars, labels, strict=True)):
        x = LEFT + i * slot + (slot - width) / 2
        sent_h = plot_h * bar.sent / peak
        failed_h = plot_h * bar.failed / peak
        tip = escape(describe(bar, label))
        parts.append(
            f'<g class="sa-bar" data-sent="{bar.sent}" data-failed="{bar.failed}"><title>{tip}</title>'
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - sent_h:.1f}" width="{width:.1f}" height="{sent_h:.1f}" fill="{SENT_COLOUR}"/>'
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - sent_h - failed_h:.1f}" width="{width:.1f}" height="{failed_h:.1f}"'
            f' fill="{FAILED_COLOUR}"/></g>'
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + width / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
