"""The dashboard's charts, drawn on the server as inline SVG: no script, no file from elsewhere.

Colours come from the stylesheet through classes (`series-0`.., `bar-warn`, `mark-block`), never
from inline styles, so the admin surface's Content-Security-Policy (`style-src 'self'`) holds and
dark mode restyles them. Every shape a reader may ask about carries a `<title>` (the tooltip, and
what a screen reader says); each chart has a title and a description.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from markupsafe import Markup, escape

from ..budget.cost import usd
from .data import OTHERS
from .models import BudgetInfo, SpendSeries

PICO_PER_USD = 10**12
SERIES_COLOURS = 8
"""Lines drawn in their own colour; the rest of a spend series is summed as one band."""
NO_NAME = "(none)"


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def budget_bar(budget: BudgetInfo) -> Markup:
    """One budget instance as a horizontal bar: spend filled (classed by its state), estimates in
    flight after it, and a mark at the warn and at the block threshold. The scale reaches past the
    block mark (and past the spend, up to twice the limit) so both marks are always in view."""
    limit = budget.limit_pico or 1
    spent = budget.spent_pico / limit
    reserved = budget.reserved_pico / limit
    scale = max(1.0, budget.block_fraction, min(spent + reserved, 2.0)) * 1.08
    width = 1000.0

    def x(fraction: float) -> float:
        return min(fraction, scale) / scale * width

    label = (f"{budget.budget} ({budget.scope} {budget.target}): {usd(budget.spent_pico)} of {usd(budget.limit_pico)}"
             f" spent, {_percent(budget.spent_pico, limit)} of the limit")
    parts = [
        f'<svg class="budget-bar" viewBox="0 0 {_num(width)} 28" preserveAspectRatio="none" role="img"'
        f' aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
        f'<rect class="bar-track" x="0" y="6" width="{_num(width)}" height="16" rx="3"/>',
        f'<rect class="bar-fill bar-{budget.state}" x="0" y="6" width="{_num(x(spent))}" height="16" rx="3">'
        f"<title>spent {escape(usd(budget.spent_pico))}</title></rect>",
    ]
    if budget.reserved_pico:
        parts.append(
            f'<rect class="bar-reserved" x="{_num(x(spent))}" y="6" width="{_num(x(spent + reserved) - x(spent))}"'
            f' height="16"><title>in flight {escape(usd(budget.reserved_pico))}</title></rect>'
        )
    if budget.warn_fraction is not None and budget.warn_pico is not None:
        parts.append(_mark("mark-warn", x(budget.warn_fraction), f"warn at {usd(budget.warn_pico)}"
                           f" ({_percent(budget.warn_pico, limit)})"))
    parts.append(_mark("mark-block", x(budget.block_fraction), f"block at {usd(budget.block_pico)}"
                       f" ({_percent(budget.block_pico, limit)})"))
    parts.append("</svg>")
    return Markup("".join(parts))


def _mark(css: str, at: float, title: str) -> str:
    return (f'<line class="{css}" x1="{_num(at)}" x2="{_num(at)}" y1="1" y2="27" vector-effect="non-scaling-stroke">'
            f"<title>{escape(title)}</title></line>")


def _percent(part: int, whole: int) -> str:
    return f"{Decimal(part * 100) / Decimal(whole):.0f}%" if whole else "0%"


@dataclass(frozen=True)
class Band:
    """One coloured layer of the stacked chart: a line of the series, or the rest summed."""

    name: str
    colour: int
    values: tuple[int, ...]
    total: int


def bands(series: SpendSeries) -> list[Band]:
    """The series' lines, highest spend first, the first `SERIES_COLOURS - 1` each in its own
    colour and the rest summed as one `OTHERS` band (when there are more than `SERIES_COLOURS`,
    the data's own `OTHERS` line among them)."""
    lines = [line for line in series.lines if line.total_pico > 0]
    own = lines if len(lines) <= SERIES_COLOURS else lines[:SERIES_COLOURS - 1]
    found = [Band(line.name or NO_NAME, i, tuple(p.spent_pico for p in line.points), line.total_pico)
             for i, line in enumerate(own)]
    rest = lines[len(own):]
    if rest:
        values = tuple(sum(column) for column in zip(*(tuple(p.spent_pico for p in r.points) for r in rest),
                                                     strict=True))
        found.append(Band(OTHERS, len(own), values, sum(r.total_pico for r in rest)))
    return found


def _nice_scale(pico: int) -> tuple[int, int]:
    """The smallest 1, 2 or 5 times a power of ten (in pico-USD, at least a micro-dollar) not below
    `pico`, and how many equal steps divide it into round amounts (quarters, halves or fifths)."""
    step = 10**6
    while True:
        for factor, ticks in ((1, 4), (2, 4), (5, 5)):
            if step * factor >= pico:
                return step * factor, ticks
        step *= 10


def _bucket_label(at: datetime, granularity: str) -> str:
    return at.strftime("%b %d") if granularity == "day" else at.strftime("%H:00")


def _bucket_title(at: datetime, granularity: str) -> str:
    return at.strftime("%Y-%m-%d") if granularity == "day" else at.strftime("%Y-%m-%d %H:00 UTC")


def stacked_spend(series: SpendSeries, drawn: Sequence[Band], title: str) -> Markup:
    """Spend per bucket as stacked columns, one band per line, with a dollar axis (0 and four
    ticks) and a date or hour axis; each column and each segment titled with its amounts."""
    width, height = 960.0, 300.0
    left, right, top, bottom = 72.0, 8.0, 10.0, 36.0
    plot_w, plot_h = width - left - right, height - top - bottom
    count = max(1, len(series.buckets))
    totals = [sum(b.values[i] for b in drawn) for i in range(len(series.buckets))]
    ceiling, ticks = _nice_scale(max(totals, default=0))
    column = plot_w / count
    gap = min(2.0, column * 0.2)

    def y(pico: int) -> float:
        return top + plot_h - pico / ceiling * plot_h

    description = (f"{usd(series.total_pico)} in all from "
                   f"{_bucket_title(series.since, series.granularity)} to "
                   f"{_bucket_title(series.until, series.granularity)}, by {series.group_by}")
    parts = [
        f'<svg class="spend-chart" viewBox="0 0 {_num(width)} {_num(height)}" role="img"'
        f' aria-labelledby="spend-title spend-desc">',
        f'<title id="spend-title">{escape(title)}</title>',
        f'<desc id="spend-desc">{escape(description)}</desc>',
        '<g class="axis y-axis">',
    ]
    for tick in range(ticks + 1):
        value = ceiling * tick // ticks
        level = y(value)
        parts.append(f'<line class="grid" x1="{_num(left)}" x2="{_num(width - right)}" y1="{_num(level)}"'
                     f' y2="{_num(level)}"/>')
        parts.append(f'<text x="{_num(left - 6)}" y="{_num(level + 4)}" text-anchor="end">{escape(usd(value))}</text>')
    parts.append("</g>")
    parts.append('<g class="axis x-axis">')
    for i, at in enumerate(series.buckets):
        if _labelled(i, at, len(series.buckets), series.granularity):
            cx = left + i * column + column / 2
            label = _bucket_label(at, series.granularity)
            if series.granularity == "hour" and at.hour == 0:
                label = at.strftime("%b %d")
            parts.append(f'<line class="tick" x1="{_num(cx)}" x2="{_num(cx)}" y1="{_num(top + plot_h)}"'
                         f' y2="{_num(top + plot_h + 4)}"/>')
            parts.append(f'<text x="{_num(cx)}" y="{_num(top + plot_h + 18)}" text-anchor="middle">'
                         f"{escape(label)}</text>")
    parts.append(f'<line class="baseline" x1="{_num(left)}" x2="{_num(width - right)}" y1="{_num(top + plot_h)}"'
                 f' y2="{_num(top + plot_h)}"/>')
    parts.append("</g>")
    parts.append('<g class="columns">')
    for i, at in enumerate(series.buckets):
        if not totals[i]:
            continue
        x = left + i * column + gap / 2
        when = _bucket_title(at, series.granularity)
        parts.append(f"<g><title>{escape(when)}: {escape(usd(totals[i]))}</title>")
        stacked = 0
        for band in drawn:
            value = band.values[i]
            if not value:
                continue
            top_y, bottom_y = y(stacked + value), y(stacked)
            parts.append(
                f'<rect class="series-{band.colour}" x="{_num(x)}" y="{_num(top_y)}" width="{_num(column - gap)}"'
                f' height="{_num(max(bottom_y - top_y, 0.5))}"><title>{escape(band.name)}, {escape(when)}:'
                f" {escape(usd(value))}</title></rect>"
            )
            stacked += value
        parts.append("</g>")
    parts.append("</g></svg>")
    return Markup("".join(parts))


def _labelled(index: int, at: datetime, count: int, granularity: str) -> bool:
    """About eight labels: every sixth hour (midnight by its date), a week's days, or each of a few days."""
    if granularity == "hour":
        return at.hour % 6 == 0
    return count <= 21 or index % 7 == 0


def swatch(colour: int) -> Markup:
    return Markup(f'<svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect class="series-{colour}"'
                  f' width="10" height="10" rx="2"/></svg>')
