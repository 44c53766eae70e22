"""Inline SVG charts for the PDF: no JavaScript, no fonts or images fetched from anywhere.

Each helper returns markup that is safe to drop into the template; every label is escaped.
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

SEVERITY_COLOURS = {
    "critical": "#9b1c1c",
    "high": "#d9480f",
    "medium": "#e0a800",
    "low": "#2b8a3e",
    "info": "#5c7cfa",
}
FALLBACK_COLOUR = "#868e96"
INK = "#343a40"


def _svg(width: int, height: int, body: str, title: str) -> SafeString:
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">{body}</svg>'
    )


def bars_over_time(
    points: list[tuple[str, int]],
    *,
    title: str,
    width: int = 480,
    height: int = 150,
    overlay: list[int] | None = None,
    overlay_colour: str = "#c92a2a",
) -> SafeString:
    """A column per day (or bucket): `points` is [(label, count)], in order.

    `overlay`, one count per point, is drawn over each column's foot in `overlay_colour`
    (the part of the runs that failed, on the jobs dashboard).
    """
    if not points:
        return _svg(width, height, "", title)
    top = max(count for _, count in points) or 1
    left, bottom, chart_h = 28, 20, height - 30
    slot = (width - left) / len(points)
    base = height - bottom
    parts = [
        f'<line x1="{left}" y1="{base}" x2="{width}" y2="{base}" stroke="{INK}" stroke-width="0.5"/>',
        f'<text x="{left - 4}" y="{base - chart_h + 8}" font-size="8" text-anchor="end" fill="{INK}">{top}</text>',
        f'<text x="{left - 4}" y="{base}" font-size="8" text-anchor="end" fill="{INK}">0</text>',
    ]
    label_every = max(1, len(points) // 8)
    for index, (label, count) in enumerate(points):
        bar_h = chart_h * count / top
        x = left + index * slot
        parts.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{height - bottom - bar_h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{bar_h:.1f}" fill="#1c7ed6"><title>{escape(label)}: {count}</title></rect>'
        )
        if overlay and overlay[index]:
            part_h = chart_h * min(overlay[index], top) / top
            parts.append(
                f'<rect class="overlay" x="{x + slot * 0.15:.1f}" y="{base - part_h:.1f}" width="{slot * 0.7:.1f}" '
                f'height="{part_h:.1f}" fill="{overlay_colour}"><title>{escape(label)}: {overlay[index]}</title></rect>'
            )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{height - 6}" font-size="7" text-anchor="middle" '
                f'fill="{INK}">{escape(label)}</text>'
            )
    return _svg(width, height, "".join(parts), title)


def horizontal_bars(
    rows: list[tuple[str, int, str]], *, title: str, width: int = 480, bar_height: int = 16
) -> SafeString:
    """One labelled bar per row: `rows` is [(label, count, colour)]."""
    label_w, gap = 130, 6
    height = max(1, len(rows)) * (bar_height + gap)
    top = max((count for _, count, _ in rows), default=0) or 1
    room = width - label_w - 40
    parts = []
    for index, (label, count, colour) in enumerate(rows):
        y = index * (bar_height + gap)
        bar_w = room * count / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_height - 4}" font-size="9" text-anchor="end" fill="{INK}">'
            f"{escape(label)}</text>"
            f'<rect x="{label_w}" y="{y}" width="{bar_w:.1f}" height="{bar_height}" fill="{colour}"/>'
            f'<text x="{label_w + bar_w + 4:.1f}" y="{y + bar_height - 4}" font-size="9" fill="{INK}">{count}</text>'
        )
    return _svg(width, height, "".join(parts), title)


def severity_breakdown(by_severity: list[dict], *, title: str = "Findings by severity") -> SafeString:
    """Bars for critical → informational, coloured by severity."""
    rows = [(row["label"], row["count"], SEVERITY_COLOURS.get(row["severity"], FALLBACK_COLOUR)) for row in by_severity]
    return horizontal_bars(rows, title=title)


def progress_bar(segments: list[tuple[str, int, str]], *, title: str, width: int = 480, height: int = 46) -> SafeString:
    """One stacked bar of the whole (e.g. removal requests by status) with a legend beneath."""
    total = sum(count for _, count, _ in segments) or 1
    x, parts = 0.0, []
    for _label, count, colour in segments:
        w = width * count / total
        if w:
            parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="18" fill="{colour}"/>')
        x += w
    legend_x = 0
    for label, count, colour in segments:
        text = f"{label}: {count}"
        parts.append(
            f'<rect x="{legend_x}" y="28" width="9" height="9" fill="{colour}"/>'
            f'<text x="{legend_x + 12}" y="36" font-size="8" fill="{INK}">{escape(text)}</text>'
        )
        legend_x += 14 + 5 * len(text)
    return _svg(width, height, "".join(parts), title)


# One colour per series of a stacked chart, in order; then round again.
SERIES_COLOURS = ("#1c7ed6", "#e8590c", "#2b8a3e", "#ae3ec9", "#f59f00", "#0b7285", "#c2255c", "#5c940d")


def stacked_columns(
    labels: list[str],
    series: list[tuple[str, list[int]]],
    *,
    title: str,
    ticks: dict[int, str] | None = None,
    mark: int | None = None,
    width: int = 720,
    height: int = 190,
) -> SafeString:
    """A column per bucket, stacked from `series` ([(name, one count per label)], colours in order).

    `ticks` labels chosen columns on the axis (index -> text); `mark` outlines one column
    (the peak). Each column's tooltip names its label and every series' count.
    """
    if not labels:
        return _svg(width, height, "", title)
    totals = [sum(counts[index] for _, counts in series) for index in range(len(labels))]
    top = max(totals) or 1
    left, bottom, chart_h = 34, 20, height - 30
    slot = (width - left) / len(labels)
    base = height - bottom
    parts = [
        f'<line x1="{left}" y1="{base}" x2="{width}" y2="{base}" stroke="{INK}" stroke-width="0.5"/>',
        f'<text x="{left - 4}" y="{base - chart_h + 8}" font-size="8" text-anchor="end" fill="{INK}">{top}</text>',
        f'<text x="{left - 4}" y="{base}" font-size="8" text-anchor="end" fill="{INK}">0</text>',
    ]
    for index, label in enumerate(labels):
        x = left + index * slot
        y = float(base)
        tip = "; ".join(f"{name} {counts[index]}" for name, counts in series if counts[index])
        column = [f"<title>{escape(label)}: {totals[index]} ({escape(tip) or 'none'})</title>"]
        for number, (_, counts) in enumerate(series):
            if counts[index]:
                h = chart_h * counts[index] / top
                y -= h
                colour = SERIES_COLOURS[number % len(SERIES_COLOURS)]
                column.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(slot * 0.8, 1):.1f}" height="{h:.1f}" fill="{colour}"/>'
                )
        # A transparent full-height target, so the tooltip shows on short columns too.
        column.append(
            f'<rect x="{x:.1f}" y="{base - chart_h}" width="{slot:.1f}" height="{chart_h}" fill="transparent"/>'
        )
        parts.append(f"<g>{''.join(column)}</g>")
        if mark == index:
            parts.append(
                f'<rect class="mark" x="{x - 1:.1f}" y="{base - chart_h * totals[index] / top - 2:.1f}" '
                f'width="{slot + 2:.1f}" height="{chart_h * totals[index] / top + 2:.1f}" fill="none" '
                f'stroke="{INK}" stroke-width="1"/>'
            )
    for index, text in (ticks or {}).items():
        x = left + index * slot
        parts.append(
            f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 3}" stroke="{INK}" stroke-width="0.5"/>'
            f'<text x="{x + 2:.1f}" y="{height - 6}" font-size="8" fill="{INK}">{escape(text)}</text>'
        )
    return _svg(width, height, "".join(parts), title)
