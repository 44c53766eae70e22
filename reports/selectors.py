"""Reads for reports: everything a period's report shows, from the products' own tables."""

from __future__ import annotations

import math
import zoneinfo
from collections import Counter
from datetime import date, datetime, time, timedelta

from django.db.models import Count

from jobs.models import JobRun
from jobs.operators import may_view_all
from kordant.models import Subscription
from reports.models import Report
from scanners.darkwatch.models import Alert, WatchlistItem
from scanners.findings import SEVERITY_ORDER, Severity
from scanners.hometitle.models import Property, TitleChange
from scanners.removebrokers.models import RemovalRequest
from scanners.voiceprint.models import AnalysisJob, Verdict, VoiceSample

REPORT_JOB_TYPE = "reports.generate"
# A chart column per day up to two months; longer periods group days (a year: a column per week).
CHART_MAX_COLUMNS = 62


def period_bounds(subscription: Subscription, start: date, end: date) -> tuple[datetime, datetime]:
    """The period's first instant and the instant after its last day, in the subscription's timezone."""
    tz = zoneinfo.ZoneInfo(subscription.timezone)
    return datetime.combine(start, time.min, tzinfo=tz), datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz)


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period of the same length that ends the day before `start`."""
    length = (end - start).days + 1
    return start - timedelta(days=length), start - timedelta(days=1)


def report_data(subscription: Subscription, start: date, end: date) -> dict:
    """The period's findings per product, with the previous period's totals for comparison."""
    begins, ends = period_bounds(subscription, start, end)
    prev_begins, prev_ends = period_bounds(subscription, *previous_period(start, end))
    tz = zoneinfo.ZoneInfo(subscription.timezone)
    return {
        "darkwatch": _darkwatch(subscription, begins, ends, prev_begins, prev_ends, tz, start, end),
        "hometitle": _hometitle(subscription, begins, ends, prev_begins, prev_ends),
        "removebrokers": _removebrokers(subscription, begins, ends),
        "voiceprint": _voiceprint(subscription, begins, ends, prev_begins, prev_ends),
        "scans": _scans(subscription, begins, ends, prev_begins, prev_ends),
    }


def _days_per_column(start: date, end: date) -> int:
    return math.ceil(((end - start).days + 1) / CHART_MAX_COLUMNS)


def columns_of_days(per_day: Counter, start: date, end: date) -> list[tuple[date, int]]:
    """[(first day of the column, count)] for a chart of start..end in at most CHART_MAX_COLUMNS columns.

    Only days that have findings are counted (per_day), and the columns are at most a constant
    number: what a report holds follows the rows it read, not the number of days in its period.
    """
    width = _days_per_column(start, end)
    columns = Counter()
    for day, count in per_day.items():
        columns[(day - start).days // width] += count
    count_of_columns = math.ceil(((end - start).days + 1) / width)
    return [(start + timedelta(days=index * width), columns.get(index, 0)) for index in range(count_of_columns)]


def _change(current: int, previous: int) -> dict:
    return {"current": current, "previous": previous, "delta": current - previous}


def _severity_rows(counts: Counter) -> list[dict]:
    return [{"severity": s.value, "label": s.label, "count": counts.get(s.value, 0)} for s in Severity]


def _darkwatch(subscription, begins, ends, prev_begins, prev_ends, tz, start, end) -> dict:
    alerts = Alert.objects.filter(subscription=subscription, first_seen__gte=begins, first_seen__lt=ends)
    rows = list(
        alerts.order_by("first_seen", "pk").values(
            "first_seen",
            "severity",
            "status",
            "breach__name",
            "breach__title",
            "breach__severity",
            "item__kind",
            "item__masked",
        )
    )
    previous = Alert.objects.filter(subscription=subscription, first_seen__gte=prev_begins, first_seen__lt=prev_ends)
    severities = Counter(row["severity"] for row in rows)
    breaches: dict[str, dict] = {}
    per_day = Counter()
    for row in rows:
        row["first_seen_local"] = row["first_seen"].astimezone(tz)
        per_day[row["first_seen_local"].date()] += 1
        breach = breaches.setdefault(
            row["breach__name"],
            {
                "name": row["breach__name"],
                "title": row["breach__title"] or row["breach__name"],
                "severity": row["breach__severity"],
                "count": 0,
            },
        )
        breach["count"] += 1
    rank = {severity: index for index, severity in enumerate(SEVERITY_ORDER)}
    rows.sort(key=lambda row: (rank.get(row["severity"], 99), row["first_seen"]))
    return {
        "set_up": WatchlistItem.objects.filter(watchlist__subscription=subscription).exists(),
        "total": _change(len(rows), previous.count()),
        "by_severity": _severity_rows(severities),
        "by_breach": sorted(breaches.values(), key=lambda b: (-b["count"], b["name"])),
        "per_day": columns_of_days(per_day, start, end),
        "days_per_column": _days_per_column(start, end),
        "alerts": rows,
    }


def _hometitle(subscription, begins, ends, prev_begins, prev_ends) -> dict:
    changes = TitleChange.objects.filter(
        property__subscription=subscription, detected_at__gte=begins, detected_at__lt=ends
    )
    rows = list(
        changes.order_by("detected_at", "pk").values(
            "detected_at",
            "severity",
            "property__address",
            "document__document_type",
            "document__document_number",
            "document__recorded_date",
            "document__grantee",
        )
    )
    previous = TitleChange.objects.filter(
        property__subscription=subscription, detected_at__gte=prev_begins, detected_at__lt=prev_ends
    ).count()
    return {
        "set_up": Property.objects.filter(subscription=subscription).exists(),
        "total": _change(len(rows), previous),
        "by_severity": _severity_rows(Counter(row["severity"] for row in rows)),
        "changes": rows,
    }


def _removebrokers(subscription, begins, ends) -> dict:
    requests = RemovalRequest.objects.filter(subscription=subscription)
    # Progress is where every request stands now; the period adds what moved during it.
    by_status = dict(requests.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    return {
        "set_up": bool(by_status),
        "by_status": [
            {"status": value, "label": label, "count": by_status.get(value, 0)}
            for value, label in RemovalRequest.Status.choices
        ],
        "total": sum(by_status.values()),
        "submitted_in_period": requests.filter(submitted_at__gte=begins, submitted_at__lt=ends).count(),
        "confirmed_in_period": requests.filter(confirmed_at__gte=begins, confirmed_at__lt=ends).count(),
        "rows": list(
            requests.filter(updated_at__gte=begins, updated_at__lt=ends)
            .order_by("broker__name")
            .values("broker__name", "status", "submitted_at", "confirmed_at")
        ),
    }


def _voiceprint(subscription, begins, ends, prev_begins, prev_ends) -> dict:
    analyses = AnalysisJob.objects.filter(
        sample__subscription=subscription, created_at__gte=begins, created_at__lt=ends
    )
    verdicts = dict(
        analyses.filter(status=AnalysisJob.Status.DONE)
        .values_list("verdict")
        .annotate(n=Count("pk"))
        .values_list("verdict", "n")
    )
    total = analyses.count()
    previous = AnalysisJob.objects.filter(
        sample__subscription=subscription, created_at__gte=prev_begins, created_at__lt=prev_ends
    ).count()
    return {
        "set_up": VoiceSample.objects.filter(subscription=subscription).exists(),
        "total": _change(total, previous),
        "failed": analyses.filter(status=AnalysisJob.Status.FAILED).count(),
        "by_verdict": [{"verdict": v, "label": label, "count": verdicts.get(v, 0)} for v, label in Verdict.choices],
        "rows": list(
            analyses.order_by("created_at").values(
                "created_at", "status", "verdict", "similarity", "synthetic_score", "sample__original_name"
            )
        ),
    }


def _scans(subscription, begins, ends, prev_begins, prev_ends) -> dict:
    runs = JobRun.objects.filter(subscription=subscription, created_at__gte=begins, created_at__lt=ends).exclude(
        job_type=REPORT_JOB_TYPE
    )
    grouped: dict[str, dict] = {}
    for job_type, status, n in runs.values_list("job_type", "status").annotate(n=Count("pk")).order_by("job_type"):
        entry = grouped.setdefault(job_type, {"job_type": job_type, "total": 0, "completed": 0, "failed": 0})
        entry["total"] += n
        if status == JobRun.Status.COMPLETED:
            entry["completed"] += n
        elif status == JobRun.Status.FAILED:
            entry["failed"] += n
    previous = (
        JobRun.objects.filter(subscription=subscription, created_at__gte=prev_begins, created_at__lt=prev_ends)
        .exclude(job_type=REPORT_JOB_TYPE)
        .count()
    )
    return {"by_type": list(grouped.values()), "total": _change(sum(g["total"] for g in grouped.values()), previous)}


def report_for_user(user, report_id: int) -> Report | None:
    """The report if `user` may download it (its subscription's owner, or staff who may view reports), else None."""
    if not user.is_authenticated:
        return None
    reports = Report.objects.select_related("subscription")
    if not may_view_all(user, Report):
        reports = reports.filter(subscription__user=user)
    return reports.filter(pk=report_id, status=Report.Status.READY).exclude(file="").first()
