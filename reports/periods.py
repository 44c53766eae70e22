"""Which period a scheduled report covers: the one that just ended, in the subscription's timezone."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, timedelta

from django.utils import timezone


def last_full_week(today: date) -> tuple[date, date]:
    """Monday to Sunday of the week before the one `today` falls in."""
    end = today - timedelta(days=today.weekday() + 1)
    return end - timedelta(days=6), end


def last_full_month(today: date) -> tuple[date, date]:
    """The first to the last day of the month before the one `today` falls in."""
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def period_just_ended(frequency: str, at: datetime | None, tz_name: str) -> tuple[str, date, date]:
    """(kind, start, end) of the period that ended before `at` (now if None) in `tz_name`.

    Monthly schedules report the previous calendar month; every other frequency (weekly,
    or a custom cron expression) reports the previous Monday–Sunday week.
    """
    today = (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(tz_name)).date()
    if frequency == "monthly":
        return ("monthly", *last_full_month(today))
    return ("weekly", *last_full_week(today))
