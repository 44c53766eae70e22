"""A report's HTML from its context, and WeasyPrint's PDF from that HTML."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string

from reports import charts, listings
from reports.errors import ReportContextInvalid, ReportRenderFailed

TEMPLATE = "reports/report.html"
# What the template cannot do without; a context missing any of them is a bug upstream, not a report.
REQUIRED_CONTEXT = ("subscriber", "period_start", "period_end", "kind_label", "timezone", "data", "page_size")
PRODUCTS = ("darkwatch", "hometitle", "removebrokers", "voiceprint", "scans")

REMOVAL_COLOURS = {
    "confirmed": "#2b8a3e",
    "submitted": "#1c7ed6",
    "pending": "#adb5bd",
    "needs_user_action": "#e0a800",
    "failed": "#9b1c1c",
}


@dataclass(frozen=True)
class RenderedPdf:
    content: bytes
    page_count: int


def report_context(*, subscriber: str, report, data: dict, timezone: str) -> dict:
    """The template's context: the compiled data plus the charts drawn from it."""
    darkwatch = data["darkwatch"]
    per_day = [(day.strftime("%d %b"), count) for day, count in darkwatch["per_day"]]
    removal = data["removebrokers"]
    removal_segments = [
        (row["label"], row["count"], REMOVAL_COLOURS.get(row["status"], "#868e96")) for row in removal["by_status"]
    ]
    return {
        "subscriber": subscriber,
        "period_start": report.period_start,
        "period_end": report.period_end,
        "kind_label": report.get_kind_display(),
        "timezone": timezone,
        "page_size": settings.REPORTS_PAGE_SIZE,
        "data": data,
        "appendix": listings.appendix(data),
        "nothing_found": not any(
            [
                darkwatch["total"]["current"],
                data["hometitle"]["total"]["current"],
                removal["submitted_in_period"],
                removal["confirmed_in_period"],
                data["voiceprint"]["total"]["current"],
            ]
        ),
        "charts": {
            "exposures_over_time": charts.bars_over_time(per_day, title=_per_column_title(darkwatch)),
            "exposure_severity": charts.severity_breakdown(darkwatch["by_severity"], title="Exposures by severity"),
            "title_severity": charts.severity_breakdown(
                data["hometitle"]["by_severity"], title="Title changes by severity"
            ),
            "removal_progress": charts.progress_bar(removal_segments, title="Removal requests by status"),
        },
    }


def _per_column_title(darkwatch: dict) -> str:
    days = darkwatch.get("days_per_column", 1)
    return "New exposures per day" if days == 1 else f"New exposures per {days} days"


def report_html(context: dict) -> str:
    """Render the report template; ReportContextInvalid if the context lacks what it needs."""
    missing = [key for key in REQUIRED_CONTEXT if key not in context]
    missing += [f"data.{product}" for product in PRODUCTS if product not in context.get("data", {})]
    if missing:
        raise ReportContextInvalid(f"report context is missing {', '.join(missing)}")
    try:
        return render_to_string(TEMPLATE, context)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ReportContextInvalid(f"report template could not use its context: {exc}") from exc


def pdf_engine_warm_up() -> None:
    """Load WeasyPrint and the report's fonts by rendering a line in each face the report uses
    (about a second and a half, once), so a forking worker's horses share them."""
    pdf_from_html(
        "<p style=\"font-family: 'DejaVu Sans'\">a <b>b</b></p>"
        "<p style=\"font-family: 'DejaVu Sans Mono'\">c <b>d</b></p>"
    )


def pdf_from_html(html: str) -> RenderedPdf:
    """Lay out and write the PDF; ReportRenderFailed with WeasyPrint's reason if it cannot."""
    from weasyprint import HTML  # imported here: web processes that never render need not load it
    from weasyprint.urls import URLFetcher

    # Everything a report shows is inline; fetching anything would leak the report to a third party.
    no_fetching = URLFetcher(allowed_protocols=frozenset())
    try:
        document = HTML(string=html, url_fetcher=no_fetching).render()
        return RenderedPdf(content=document.write_pdf(), page_count=len(document.pages))
    except Exception as exc:  # WeasyPrint raises many kinds; the run needs one clear reason
        raise ReportRenderFailed(f"WeasyPrint could not render the report: {type(exc).__name__}: {exc}") from exc
