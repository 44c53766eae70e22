"""Which periods a report may cover, and which one a scheduled report covers: the one that just
ended, in the subscription's timezone."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, timedelta

from django.utils import timezone

# A report covers at most a year: 366 days, so any calendar year (leap or not) fits, and a
# customer's year-in-review is one request. Scheduled reports cover a week or a month. Longer
# periods bought nothing a customer asked for and cost a worker minutes and gigabytes
# (200 years: 37 s, 1.7 GB); the bound keeps every report's work within one year of rows.
MAX_PERIOD_DAYS = 366
# Days a period may start and end on. Kordant holds nothing from before 2000, and the bounds
# keep the previous period (the comparison) and the period's instants inside Python's calendar
# (0001-01-01..9999-12-31 raised OverflowError in the worker).
REPORT_PERIOD_FIRST_DAY = date(2000, 1, 1)
REPORT_PERIOD_LAST_DAY = date(2099, 12, 31)


def period_problems(start: date | None, end: date | None) -> dict[str, str]:
    """What is wrong with a report period, by field ("period_start", "period_end"); empty if nothing.

    The one definition: the job type's payload schema (API, admin enqueue, worker) and
    report_request ask it. Either day may be None when only the other is known.
    """
    problems = {}
    for field, day in (("period_start", start), ("period_end", end)):
        if day is not None and not REPORT_PERIOD_FIRST_DAY <= day <= REPORT_PERIOD_LAST_DAY:
            problems[field] = f"must be between {REPORT_PERIOD_FIRST_DAY} and {REPORT_PERIOD_LAST_DAY}, not {day}"
    if start is None or end is None or problems:
        return problems
    if end < start:
        problems["period_end"] = f"period ends ({end}) before it starts ({start})"
    elif (end - start).days + 1 > MAX_PERIOD_DAYS:
        problems["period_end"] = (
            f"a report covers at most {MAX_PERIOD_DAYS} days; {start} to {end} is {(end - start).days + 1}"
        )
    return problems


def last_full_week(today: date) -> tuple[date, date]:
    """Monday to Sunday of the week before the one `today` falls in."""
    end = today - timedelta(days=today.weekday() + 1)
    return end - timedelta(days=6), end


def last_full_month(today: date) -> tuple[date, date]:
    """The first to the last day of the month before the one `today` falls in."""
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def last_days(today: date, days: int) -> tuple[date, date]:
    """The `days` days up to and including yesterday."""
    end = today - timedelta(days=1)
    return end - timedelta(days=days - 1), end


def period_just_ended(frequency: str, at: datetime | None, tz_name: str) -> tuple[str, date, date]:
    """(kind, start, end) of the period that ended before `at` (now if None) in `tz_name`.

    Monthly schedules report the previous calendar month; every other frequency (weekly,
    or a custom cron expression) reports the previous Monday–Sunday week.
    """
    today = (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(tz_name)).date()
    if frequency == "monthly":
        return ("monthly", *last_full_month(today))
    return ("weekly", *last_full_week(today))
