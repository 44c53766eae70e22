"""Schedule time: cron expressions, per-subscription spread, and DST-correct next runs.

Times are computed on the schedule's local wall clock and stored in UTC:
- a local time that does not exist (spring forward) runs once, at the first
  instant after the gap (02:30 on a New York spring-forward day runs at 03:00 EDT);
- a local time that happens twice (fall back) runs once, at its first occurrence.

Named frequencies get a stable spread: each (subscription, job type) has its own
minute, hour and day inside the period, picked by Fibonacci hashing of the
subscription id, so consecutive ids land evenly apart instead of firing together.
"""

from __future__ import annotations

import math
import zlib
import zoneinfo
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from croniter import croniter
from django.core.exceptions import ValidationError

FREQUENCIES = ("hourly", "daily", "weekly", "monthly")
# Minutes in each period that the spread may pick from. Monthly stops at day 28,
# which every month has.
_PERIOD_MINUTES = {"hourly": 60, "daily": 24 * 60, "weekly": 7 * 24 * 60, "monthly": 28 * 24 * 60}
_GOLDEN = (math.sqrt(5) - 1) / 2
# The longest gap between two ticks of a named frequency, with room to spare: a
# schedule further behind than this catches up from here, not from its first miss.
CATCH_UP_HORIZON = timedelta(days=35)


def validate_cron(value: str) -> None:
    """Refuse anything that is not a standard five-field cron expression."""
    if not isinstance(value, str) or len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValidationError(
            "%(value)s is not a valid five-field cron expression (minute hour day month weekday).",
            code="invalid_cron",
            params={"value": value},
        )


def spread_cron(frequency: str, subscription_id: int, job_type: str) -> str:
    """The cron expression for a named frequency, at this subscription's stable place in the period."""
    if frequency not in _PERIOD_MINUTES:
        raise ValueError(f"unknown frequency {frequency!r}; expected one of {', '.join(FREQUENCIES)}")
    # Each job type starts the sequence elsewhere, so one customer's scans do not coincide.
    phase = zlib.crc32(job_type.encode()) / 2**32
    slot = int(((subscription_id * _GOLDEN + phase) % 1.0) * _PERIOD_MINUTES[frequency])
    minute, hour, day = slot % 60, slot // 60 % 24, slot // (24 * 60)
    if frequency == "hourly":
        return f"{minute} * * * *"
    if frequency == "daily":
        return f"{minute} {hour} * * *"
    if frequency == "weekly":
        return f"{minute} {hour} * * {day}"  # cron weekday: 0 is Sunday
    return f"{minute} {hour} {day + 1} * *"


@lru_cache(maxsize=1024)
def get_zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def next_run_after(cron: str, tz: str, after: datetime) -> datetime:
    """The first tick of `cron` on the `tz` wall clock strictly after `after`, in UTC."""
    zone = get_zone(tz)
    wall = after.astimezone(zone).replace(tzinfo=None)
    step = _simple_step(cron) or _croniter_step(cron)
    for _ in range(1000):
        wall = step(wall)
        instant = wall_to_utc(wall, zone)
        # A wall time before `after` can come round again after a fall-back: it has run.
        if instant > after:
            return instant
    raise ValueError(f"cron {cron!r} has no tick after {after.isoformat()}")


def next_runs(cron: str, tz: str, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` ticks of `cron` on the `tz` wall clock after `after`, in UTC (a preview)."""
    runs = []
    for _ in range(count):
        after = next_run_after(cron, tz, after)
        runs.append(after)
    return runs


def cron_describe(cron: str) -> str:
    """A cron expression in words ("At 03:17 AM"), for operators; the expression itself if unreadable."""
    from cron_descriptor import Options, get_description

    options = Options()
    options.use_24hour_time_format = True
    options.day_of_week_start_index_zero = True  # cron's weekday 0 is Sunday, as croniter reads it
    try:
        return get_description(cron, options)
    except Exception:  # cron-descriptor raises its own several kinds; the raw text is still true
        return cron


def due_tick(cron: str, tz: str, due: datetime, now: datetime) -> tuple[datetime, datetime]:
    """For an entry due at `due`: (the tick to run now, the next tick after `now`).

    However many ticks were missed while no scheduler ran, the latest one runs, once.
    """
    planned = due
    if due < now - CATCH_UP_HORIZON:
        recent = next_run_after(cron, tz, now - CATCH_UP_HORIZON)
        if recent <= now:
            planned = recent
    following = next_run_after(cron, tz, planned)
    while following <= now:
        planned, following = following, next_run_after(cron, tz, following)
    return planned, following


def wall_to_utc(wall: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """A naive local wall time as a UTC instant: the first occurrence, or the end of a DST gap."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap, fold=1 reads the wall time with the offset from before the jump and
    # lands before it; fold=0 lands after. The jump itself is between: find it to the second.
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = math.ceil(first.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _croniter_step(cron: str):
    def step(wall: datetime) -> datetime:
        return croniter(cron, wall).get_next(datetime)

    return step


@lru_cache(maxsize=2**17)  # every spread expression there is: 60 + 1,440 + 10,080 + 40,320
def _simple_step(cron: str):
    """A fast step for the shapes spread_cron makes (one minute, hour, day or weekday each).

    croniter costs ~70 µs a call; a sync of 100,000 subscriptions computes several
    hundred thousand next runs. tests/jobs/test_cron.py checks both agree.
    """
    fields = cron.split()
    if len(fields) != 5 or fields[3] != "*":
        return None
    minute, hour, day, _, weekday = fields
    if not minute.isdigit() or any(not (f == "*" or f.isdigit()) for f in (hour, day, weekday)):
        return None
    if day != "*" and weekday != "*":
        return None  # cron's "either matches" rule: leave it to croniter
    minute_n = int(minute)
    hour_n = None if hour == "*" else int(hour)
    day_n = None if day == "*" else int(day)
    weekday_n = None if weekday == "*" else int(weekday) % 7
    if minute_n > 59 or (hour_n is not None and hour_n > 23) or (day_n is not None and not 1 <= day_n <= 28):
        return None

    def step(wall: datetime) -> datetime:
        start = wall.replace(second=0, microsecond=0)
        if hour_n is None:
            candidate = start.replace(minute=minute_n)
            return candidate if candidate > wall else candidate + timedelta(hours=1)
        candidate = start.replace(hour=hour_n, minute=minute_n)
        if weekday_n is not None:
            # Python: Monday is 0; cron: Sunday is 0.
            ahead = (weekday_n - (candidate.weekday() + 1) % 7) % 7
            candidate += timedelta(days=ahead)
            return candidate if candidate > wall else candidate + timedelta(days=7)
        if day_n is not None:
            candidate = candidate.replace(day=day_n)
            if candidate > wall:
                return candidate
            year, month = (candidate.year + 1, 1) if candidate.month == 12 else (candidate.year, candidate.month + 1)
            return candidate.replace(year=year, month=month)
        return candidate if candidate > wall else candidate + timedelta(days=1)

    return step
