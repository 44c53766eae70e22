"""The load forecast (selectors): how many runs all schedules will start per UTC hour, per job type.

It counts exactly what the firing would: a schedule's ticks are its cron's wall-clock ticks
(cron.wall_ticks, the stepper next_run_after uses) placed on its zone's clock as
cron.wall_to_utc places them (a time in a spring-forward gap runs once at the end of the
gap; a repeated time runs once, at its first occurrence). Ticks that land on the same
instant run once: next_run_after only ever returns a time later than the last.

It never loads the schedules. SQL counts them per (cron, timezone, job type); the crons
are then split into their minute field and the rest ("M H * * *" -> "H * * *"), and the
wall hours of the rest are stepped once per distinct rest and placed once per zone. Within a
wall hour whose minutes all keep one UTC offset (every hour but those next to a DST change),
minute M lands at the hour's first instant plus M minutes: the UTC hour of each minute is
arithmetic, and no two ticks can meet, so a whole minute histogram is counted at once.
Only the hours next to a change are placed minute by minute with wall_to_utc, the firing's
own function. (Assumed, as of every zone in the tz database: no zone changes its offset
twice within one hour.) tests/jobs/test_forecast.py holds it to the per-row brute force.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Count, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs.cron import cron_minutes, get_zone, next_run_after, wall_ticks, wall_to_utc
from jobs.errors import NextRunUnknown
from jobs.models import SCHEDULE_STATE_FILTERS, Schedule, SchedulerConfig, ScheduleState

FORECAST_HOURS = 168  # a week: every spread period but the monthly one shows whole
_HOUR = 3600
# Wall times this far either side of the window can still land in it (offsets run -12..+14 h).
_WALL_MARGIN = timedelta(days=2)

# (cron expression, timezone, job type) -> how many schedules have it
Groups = Counter


@dataclass
class Forecast:
    """Runs per UTC hour from `start` (a whole hour), per job type."""

    start: datetime
    hours: int
    per_type: dict[str, list[int]] = field(default_factory=dict)
    schedules: int = 0  # schedules counted
    unreadable: int = 0  # schedules whose cron or zone cannot be read: firing stops them too

    @property
    def job_types(self) -> list[str]:
        return sorted(self.per_type)

    @property
    def totals(self) -> list[int]:
        return [sum(column) for column in zip(*self.per_type.values(), strict=True)] or [0] * self.hours

    @property
    def total(self) -> int:
        return sum(self.totals)

    def hour(self, index: int) -> datetime:
        return self.start + timedelta(hours=index)

    @property
    def peak(self) -> tuple[datetime, int] | None:
        """The busiest hour (the first of equals) and its runs; None when nothing runs."""
        totals = self.totals
        top = max(totals, default=0)
        return (self.hour(totals.index(top)), top) if top else None

    def as_dict(self) -> dict:
        """The API's shape: one bucket per hour (UTC), per-type counts, totals, the peak."""
        totals = self.totals
        peak = self.peak
        return {
            "start": self.start,
            "end": self.hour(self.hours),
            "hours": self.hours,
            "job_types": self.job_types,
            "buckets": [
                {
                    "hour": self.hour(index),
                    "total": totals[index],
                    "by_job_type": {
                        name: counts[index] for name, counts in sorted(self.per_type.items()) if counts[index]
                    },
                }
                for index in range(self.hours)
            ],
            "totals": {name: sum(counts) for name, counts in sorted(self.per_type.items())},
            "total": sum(totals),
            "peak": {"hour": peak[0], "runs": peak[1]} if peak else None,
            "schedules": self.schedules,
            "unreadable": self.unreadable,
        }


def forecast_start(start: datetime | None = None) -> datetime:
    """The forecast's first hour: the whole UTC hour `start` (default: now) falls in."""
    return (start or timezone.now()).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def active_schedules() -> QuerySet[Schedule]:
    """The schedules that fire: ACTIVE in the one state rule (models.SCHEDULE_STATE_FILTERS)."""
    return Schedule.objects.filter(SCHEDULE_STATE_FILTERS[ScheduleState.ACTIVE])


def schedule_forecast_rows(
    schedules: QuerySet[Schedule] | None = None, *, job_type: str | None = None
) -> Iterator[tuple[str, str, str, int]]:
    """(cron, timezone, job type, how many) for `schedules` (default: the active ones), counted in SQL."""
    schedules = active_schedules() if schedules is None else schedules
    # A tier schedule runs its config's type, a periodic job's row its job's.
    rows = schedules.annotate(forecast_type=Coalesce("config__job_type", "periodic_job__job_type"))
    if job_type is not None:
        rows = rows.filter(forecast_type=job_type)
    rows = rows.order_by().values_list("cron_expression", "timezone", "forecast_type").annotate(n=Count("pk"))
    # The ORM writes the query; the groups (one per schedule, nearly, when crons are spread)
    # are read straight off the cursor, a batch at a time: text and counts need no
    # conversion, and the ORM's per-row work was half the time of the whole forecast.
    try:
        sql, params = rows.query.sql_with_params()
    except EmptyResultSet:  # .none(), or a filter on an empty list: no rows to ask for
        return
    with connections[rows.db].cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(10_000):
            yield from batch


def schedule_forecast_groups(schedules: QuerySet[Schedule] | None = None, *, job_type: str | None = None) -> Groups:
    """How many of `schedules` (default: the active ones) share each (cron, timezone, job type)."""
    return Counter({(cron, tz, name): n for cron, tz, name, n in schedule_forecast_rows(schedules, job_type=job_type)})


def schedule_forecast(
    *,
    start: datetime | None = None,
    hours: int = FORECAST_HOURS,
    schedules: QuerySet[Schedule] | None = None,
    job_type: str | None = None,
) -> Forecast:
    """Runs that `schedules` (default: all active ones, tier and periodic) will start per UTC hour, per job type."""
    return _forecast(schedule_forecast_rows(schedules, job_type=job_type), start=start, hours=hours)


def dashboard_forecast() -> Forecast:
    """The dashboard's 7 days, computed at most once a minute per process: it reloads every few
    seconds, and a week ahead does not change in a minute."""
    start = forecast_start()
    return cache.get_or_set(f"jobs:forecast:{start:%Y%m%d%H}", lambda: schedule_forecast(start=start), 60)


def forecast_from_groups(groups: Groups, *, start: datetime | None = None, hours: int = FORECAST_HOURS) -> Forecast:
    """The forecast for schedules counted per (cron, timezone, job type)."""
    return _forecast(((cron, tz, name, n) for (cron, tz, name), n in groups.items()), start=start, hours=hours)


def _forecast(groups: Iterable[tuple[str, str, str, int]], *, start: datetime | None, hours: int) -> Forecast:
    start = forecast_start(start)
    forecast = Forecast(start=start, hours=hours)
    # (rest of the cron after its minute field, zone, job type) -> minute field -> schedules.
    # A flat dict: with 300,000 spread schedules nearly every cron is its own group.
    by_rest: dict[tuple[str, str, str], dict[str, int]] = {}
    values_of: dict[str, tuple[int, ...]] = {}  # minute field -> the minutes it matches
    for cron, tz, name, n in groups:
        minute, _, rest = cron.partition(" ")
        if minute not in values_of:
            values = _readable(lambda minute=minute: cron_minutes(minute))
            if values is None:
                # Not a single space after the minute (a tab, a leading space): split as cron_normalise does.
                minute, rest = [*cron.split(None, 1), "", ""][:2]
                values = _readable(lambda minute=minute: cron_minutes(minute))
                if values is None:
                    forecast.unreadable += n
                    continue
            values_of[minute] = values
        # Subscripts, not .get(): this loop runs once per group, 250,000 times for 300,000 schedules.
        key = (rest, tz, name or "")
        try:
            minutes = by_rest[key]
        except KeyError:
            minutes = by_rest[key] = {}
        if minute in minutes:
            minutes[minute] += n
        else:
            minutes[minute] = n

    low = start.replace(tzinfo=None) - _WALL_MARGIN
    high = start.replace(tzinfo=None) + timedelta(hours=hours) + _WALL_MARGIN
    first_bucket = int(start.timestamp()) // _HOUR
    walls_of: dict[str, list[datetime] | None] = {}
    clocks: dict[str, _ZoneClock | None] = {}
    placed: dict[tuple[str, str], list[int | None]] = {}
    for (rest, tz, name), minutes in by_rest.items():
        if rest not in walls_of:
            # The minute's own field is read above; the other four are read (and refused) once per rest.
            walls_of[rest] = _readable(lambda rest=rest: list(wall_ticks(f"0 {rest}", low, high)))
        if tz not in clocks:
            clocks[tz] = _readable(lambda tz=tz: _ZoneClock(tz))
        walls, clock = walls_of[rest], clocks[tz]
        if walls is None or clock is None:
            forecast.unreadable += sum(minutes.values())
            continue
        forecast.schedules += sum(minutes.values())
        places = placed.get((rest, tz))
        if places is None:
            places = placed[rest, tz] = [clock.placement(wall) for wall in walls]
        out = forecast.per_type.get(name) or forecast.per_type.setdefault(name, [0] * hours)
        _count(walls, places, clock, minutes, values_of, out, first_bucket)
    return forecast


def _readable(read):
    """What `read()` returns, or None when the cron or zone it reads is unreadable (firing stops those too)."""
    try:
        return read()
    except (NextRunUnknown, ValueError, LookupError, OSError):
        # An unknown zone is a ZoneInfoNotFoundError (a KeyError); a name like "../x" a ValueError.
        return None


class _ZoneClock:
    """One zone's wall hours placed in UTC, each once per forecast."""

    def __init__(self, tz: str):
        self.zone = get_zone(tz)
        self._hours: dict[datetime, int | None] = {}
        self._placements: dict[datetime, int | None] = {}
        self._minutes: dict[datetime, int] = {}

    def placement(self, wall: datetime) -> int | None:
        """Epoch seconds of `wall` (an hour's minute 0) when minute M of that hour runs M minutes
        later, and nothing outside the hour can land on its minutes; None next to a DST change."""
        found = self._placements.get(wall, False)
        if found is False:
            previous, this = self._regular(wall - timedelta(hours=1)), self._regular(wall)
            found = self._placements[wall] = this if previous is not None else None
        return found

    def _regular(self, wall: datetime) -> int | None:
        """Epoch seconds of `wall` when all 60 minutes of its hour exist and keep one offset."""
        found = self._hours.get(wall, False)
        if found is False:
            first, last = self._fold0(wall), self._fold0(wall + timedelta(minutes=59))
            regular = (
                first is not None
                and last is not None
                and first[1] == last[1]
                and last[0] - first[0] == timedelta(minutes=59)
            )
            found = self._hours[wall] = int(first[0].timestamp()) if regular else None
        return found

    def _fold0(self, wall: datetime):
        # wall_to_utc's first reading: the first occurrence, when the wall time exists.
        instant = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        local = instant.astimezone(self.zone)
        return (instant, local.utcoffset()) if local.replace(tzinfo=None) == wall else None

    def instant(self, wall: datetime) -> int:
        """Where the firing runs this wall time (cron.wall_to_utc), in epoch seconds."""
        found = self._minutes.get(wall)
        if found is None:
            found = self._minutes[wall] = int(wall_to_utc(wall, self.zone).timestamp())
        return found


def _count(
    walls: list[datetime],
    places: list[int | None],
    clock: _ZoneClock,
    minutes: dict[str, int],
    values_of: dict[str, tuple[int, ...]],
    out: list[int],
    first_bucket: int,
) -> None:
    """Add the ticks of the crons "<minute> <rest>" (`minutes`: minute field -> schedules) to `out`."""
    ticks = [(minute, n) for field, n in minutes.items() for minute in values_of[field]]
    everything = sum(n for _, n in ticks)
    before_minute: dict[int, int] = {60: everything}  # schedules ticking before minute c of the hour, by c
    hours = len(out)
    last: dict[str, int] = {}  # minute field -> its latest tick in an irregular stretch
    for wall, first in zip(walls, places, strict=True):
        if first is not None:
            # Its minutes keep their order and offset, and nothing outside it lands on them.
            last.clear()
            bucket = first // _HOUR - first_bucket
            cut = min(-(-(_HOUR - first % _HOUR) // 60), 60)  # minutes before the next UTC hour
            early = before_minute.get(cut)
            if early is None:
                early = before_minute[cut] = sum(n for minute, n in ticks if minute < cut)
            if 0 <= bucket < hours:
                out[bucket] += early
            if early != everything and 0 <= bucket + 1 < hours:
                out[bucket + 1] += everything - early
            continue
        # Next to a DST change: each tick where wall_to_utc puts it; ticks on one instant run once.
        for minute_field, n in minutes.items():
            for minute in values_of[minute_field]:
                at = clock.instant(wall.replace(minute=minute))
                if last.get(minute_field) == at:
                    continue
                last[minute_field] = at
                bucket = at // _HOUR - first_bucket
                if 0 <= bucket < hours:
                    out[bucket] += n


def forecast_brute_force(rows: Iterable[tuple[str, str, str]], *, start: datetime, hours: int) -> dict[str, list[int]]:
    """The reference: per (cron, timezone, job type) row, next_run_after from `start` until past the window.

    What the firing computes one schedule at a time; the tests and the benchmark compare with it.
    """
    start = forecast_start(start)
    end = start + timedelta(hours=hours)
    out: dict[str, list[int]] = defaultdict(lambda: [0] * hours)
    for cron, tz, name in rows:
        counts = out[name]
        at = start - timedelta(microseconds=1)
        while True:
            try:
                at = next_run_after(cron, tz, at)
            except NextRunUnknown:
                break
            if at >= end:
                break
            counts[int((at - start).total_seconds()) // _HOUR] += 1
    return dict(out)


# --- what if: the forecast with one definition changed, not saved ---------------------------


def forecast_change(
    *, remove: QuerySet[Schedule], add: Groups, start: datetime | None = None, hours: int = FORECAST_HOURS
) -> tuple[Forecast, Forecast]:
    """(before, after): all active schedules now, and with `remove` gone and `add` (groups) added."""
    before_groups = schedule_forecast_groups()
    after_groups = before_groups - schedule_forecast_groups(active_schedules() & remove)
    after_groups.update(add)
    start = forecast_start(start)
    return (
        forecast_from_groups(before_groups, start=start, hours=hours),
        forecast_from_groups(after_groups, start=start, hours=hours),
    )


def scheduler_config_forecast_change(
    config: SchedulerConfig | None,
    proposed: SchedulerConfig,
    *,
    start: datetime | None = None,
    hours: int = FORECAST_HOURS,
) -> tuple[Forecast, Forecast]:
    """(before, after) for saving `proposed` (unsaved) over `config` (None when adding): the
    schedules the tier sync would then make (jobs/scheduling.py), counted as it would make them."""
    remove = Schedule.objects.filter(config=config) if config is not None and config.pk else Schedule.objects.none()
    return forecast_change(remove=remove, add=scheduler_config_groups(config, proposed), start=start, hours=hours)


def scheduler_config_groups(config: SchedulerConfig | None, proposed: SchedulerConfig) -> Groups:
    """The active schedules the sync would make for `proposed`: one per live subscription of its
    tier, at that subscription's spread cron in its timezone, except those an operator paused."""
    from jobs.scheduling import LIVE_STATUSES, _desired_cron
    from kordant.models import Subscription

    groups: Groups = Counter()
    if not proposed.enabled:
        return groups  # a disabled config's schedules wait: none fires
    subscriptions = Subscription.objects.filter(tier=proposed.tier, status__in=LIVE_STATUSES)
    if config is not None and config.pk:
        # The sync keeps each row's own pause (Schedule.enabled) when the timing changes.
        subscriptions = subscriptions.exclude(
            pk__in=Schedule.objects.filter(config=config, enabled=False).values("subscription_id")
        )
    if not proposed.frequency:
        # One cron for the whole tier: count per timezone in SQL.
        for tz, n in subscriptions.order_by().values_list("timezone").annotate(n=Count("pk")):
            groups[proposed.cron_expression, tz, proposed.job_type] += n
        return groups
    # A spread per subscription: ids and zones only, a batch at a time, never model instances.
    for subscription_id, tz in subscriptions.order_by().values_list("pk", "timezone").iterator(chunk_size=10_000):
        groups[_desired_cron(proposed, subscription_id), tz, proposed.job_type] += 1
    return groups


def periodic_job_forecast_change(
    periodic_job,
    *,
    cron: str,
    tz: str,
    job_type: str,
    enabled: bool,
    start: datetime | None = None,
    hours: int = FORECAST_HOURS,
) -> tuple[Forecast, Forecast]:
    """(before, after) for a periodic job (saved, or None when adding) whose row would get `cron` in `tz`."""
    pk = getattr(periodic_job, "pk", None)
    remove = Schedule.objects.filter(periodic_job_id=pk) if pk else Schedule.objects.none()
    add = Counter({(cron, tz, job_type): 1}) if enabled else Counter()
    return forecast_change(remove=remove, add=add, start=start, hours=hours)
