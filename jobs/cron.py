"""Schedule time: cron expressions, per-subscription spread, and DST-correct next runs.

Times are computed on the schedule's local wall clock and stored in UTC:
- a local time that does not exist (spring forward) runs once, at the first
  instant after the gap (02:30 on a New York spring-forward day runs at 03:00 EDT);
- a local time that happens twice (fall back) runs once, at its first occurrence.

Expressions are read the way cron reads them, and checked before anything uses them:
`cron_normalise` is the one reading. croniter 7 reads a one-value range (`3-3`) as `*`,
and cron_descriptor describes a step that yields one value (`*/90`) as "every 90 minutes",
so each such term is rewritten to the single value it means. What cron implementations
disagree on is refused with a message, not guessed: a reversed range, `?`, `L`/`W`/`#`,
a `*`-step day field next to a weekday, a one-value range with a step (`1-1/3`), a
weekday `a/n`. The description, the preview and the firing all use the normalised
expression, so they cannot disagree. An expression whose dates never occur
(`0 0 30 2 *`) is refused too (CronNeverRuns).

Named frequencies get a stable spread: each (subscription, job type) has its own
minute, hour and day inside the period, picked by Fibonacci hashing of the
subscription id, so consecutive ids land evenly apart instead of firing together.
"""

from __future__ import annotations

import math
import re
import zlib
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from croniter import croniter
from croniter.croniter import CroniterBadDateError
from django.core.exceptions import ValidationError

from jobs.errors import CronInvalid, CronNeverRuns, NextRunUnknown

FREQUENCIES = ("hourly", "daily", "weekly", "monthly")
# Minutes in each period that the spread may pick from. Monthly stops at day 28,
# which every month has.
_PERIOD_MINUTES = {"hourly": 60, "daily": 24 * 60, "weekly": 7 * 24 * 60, "monthly": 28 * 24 * 60}
_GOLDEN = (math.sqrt(5) - 1) / 2
# The longest gap between two ticks of a named frequency, with room to spare: a
# schedule further behind than this catches up from here, not from its first miss.
CATCH_UP_HORIZON = timedelta(days=35)


def validate_cron(value: str) -> None:
    """Refuse anything that is not a five-field cron expression with a run in the coming years."""
    try:
        cron_check(value)
    except CronNeverRuns as exc:
        raise ValidationError(
            "%(value)s never runs: %(reason)s", code="cron_never_runs", params={"value": value, "reason": exc}
        ) from None
    except CronInvalid as exc:
        raise ValidationError(
            "%(value)s is not a valid five-field cron expression (minute hour day month weekday): %(reason)s",
            code="invalid_cron",
            params={"value": value, "reason": exc},
        ) from None


def cron_check(value: str) -> str:
    """The normalised expression, or CronInvalid / CronNeverRuns saying what is wrong with it."""
    normalised = cron_normalise(value)
    _has_a_run(normalised)
    return normalised


# (name, lowest, highest, names) per field; weekday 7 is Sunday again, as in every cron.
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_TERM = re.compile(r"^(?:(?P<star>\*)|(?P<low>[0-9a-z]+)(?:-(?P<high>[0-9a-z]+))?)(?:/(?P<step>[0-9]+))?$")


@lru_cache(maxsize=2**17)
def cron_normalise(value: str) -> str:
    """`value` as the expression cron means, in the syntax every reader here agrees on; CronInvalid if unreadable.

    Terms are numbers, `*`, ranges `a-b`, steps `/n` and lists; months and weekdays also by
    their three-letter names. A term that yields one value is written as that value.
    """
    if not isinstance(value, str):
        raise CronInvalid("a cron expression is text")
    fields = value.lower().split()
    if len(fields) != 5:
        raise CronInvalid(f"five fields are needed, not {len(fields)}")
    for field, (name, *_) in zip(fields, _FIELDS, strict=True):
        if field != "*" and "*" in field.split(","):
            raise CronInvalid(f"{name}: crons read '*' in a list differently; write '*' alone")
    out = [_normalise_field(field, spec) for field, spec in zip(fields, _FIELDS, strict=True)]
    day, weekday = fields[2], fields[4]
    # Cron's "day of month OR day of week" rule: Vixie cron drops it when a field merely
    # starts with "*" (`*/2`), croniter and cron_descriptor do not. Refused rather than guessed.
    if day != "*" and weekday != "*" and "*" in day + weekday:
        raise CronInvalid(
            "crons read a day of month and a day of week together differently "
            "when one of them has a '*' step; list the days instead"
        )
    return " ".join(out)


def _normalise_field(field: str, spec) -> str:
    terms = [_normalise_term(term, spec) for term in field.split(",")]
    if len(terms) == 1:
        return terms[0][0]
    # A list is written as the values it yields: cron_descriptor garbles lists that mix
    # values and steps ("only on Sunday, every 1 days of the week, and Sunday").
    values = sorted({_canonical(value, spec) for _, yielded in terms for value in yielded})
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in runs)


def _normalise_term(term: str, spec) -> tuple[str, range]:
    """The term as written for croniter and cron_descriptor, and the values it yields."""
    name, lowest, highest, _ = spec
    match = _TERM.match(term)
    if match is None:
        raise CronInvalid(f"{name}: {term!r} is not a number, a name, '*', a range a-b or a step /n")
    step = match["step"]
    last = 6 if name == "day of week" else highest  # `*/n` of weekdays stops at Saturday (7 is Sunday again)
    if step is not None and int(step) == 0:
        raise CronInvalid(f"{name}: a step of 0 never moves")
    if match["star"]:
        if step is None:
            return "*", range(lowest, last + 1)
        low, high = lowest, last
    else:
        low = _value(match["low"], spec)
        if step and not match["high"] and name == "day of week":
            raise CronInvalid(
                f"{name}: crons read {term!r} differently (up to Saturday, or on to 7, Sunday); "
                f"write the range, e.g. {low}-6/{step}"
            )
        # `a/n` is `a-<last>/n`, as croniter and cronsim read it.
        high = _value(match["high"], spec) if match["high"] else (last if step else low)
        if high < low:
            raise CronInvalid(f"{name}: the range {term!r} runs backwards")
        if step and high == low:
            # Vixie cron: the one value; croniter: every n from 0; cronsim: every n from a.
            raise CronInvalid(f"{name}: crons read the one-value range with a step {term!r} three ways; write {low}")
    values = range(low, high + 1, int(step or 1))
    if len(values) == 1:
        return str(_canonical(values[0], spec)), values
    if step is None:
        return f"{low}-{high}", values
    return f"{'*' if match['star'] else f'{low}-{high}'}/{step}", values


def _value(text: str, spec) -> int:
    name, lowest, highest, names = spec
    if text.isdigit():
        number = int(text)
    elif text in names:
        number = names.index(text) + (1 if name == "month" else 0)
    else:
        raise CronInvalid(f"{name}: {text!r} is not a number" + (f" or a name ({', '.join(names)})" if names else ""))
    if not lowest <= number <= highest:
        raise CronInvalid(f"{name}: {number} is outside {lowest}-{highest}")
    return number


def _canonical(number: int, spec) -> int:
    return 0 if spec[0] == "day of week" and number == 7 else number


def _has_a_run(normalised: str) -> None:
    # From a fixed leap year's start, croniter searches far enough for 29 February.
    try:
        croniter(normalised, datetime(2024, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise CronNeverRuns("its dates never occur (no such day in the months given)") from None


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
    """The first tick of `cron` on the `tz` wall clock strictly after `after`, in UTC.

    NextRunUnknown (CronInvalid, CronNeverRuns) when there is none to compute.
    """
    try:
        zone = get_zone(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise NextRunUnknown(f"unknown time zone {tz!r}") from exc
    normalised = cron_normalise(cron)
    wall = after.astimezone(zone).replace(tzinfo=None)
    step = _wall_step(normalised)
    for _ in range(1000):
        try:
            wall = step(wall)
        except CroniterBadDateError:
            raise CronNeverRuns(f"{cron!r} has no run after {after.isoformat()}") from None
        instant = wall_to_utc(wall, zone)
        # A wall time before `after` can come round again after a fall-back: it has run.
        if instant > after:
            return instant
    raise CronNeverRuns(f"cron {cron!r} has no tick after {after.isoformat()}")


def wall_ticks(cron: str, after: datetime, until: datetime) -> Iterator[datetime]:
    """The ticks of `cron` on a naive wall clock, strictly after `after` and up to `until`.

    The wall times next_run_after steps through before it places each on a zone's clock
    (wall_to_utc): the load forecast reads crons through this, so it cannot read one
    differently from the firing.
    """
    step = _wall_step(cron_normalise(cron))
    wall = after
    while True:
        try:
            wall = step(wall)
        except CroniterBadDateError:
            return
        if wall > until:
            return
        yield wall


@lru_cache(maxsize=1024)
def cron_minutes(minute_field: str) -> tuple[int, ...]:
    """The minutes of the hour a (normalised) minute field matches, read by the same stepper as the firing."""
    hour = datetime(2024, 1, 1)
    return tuple(
        t.minute
        for t in wall_ticks(f"{minute_field} 0 * * *", hour - timedelta(microseconds=1), hour.replace(minute=59))
    )


def next_runs(cron: str, tz: str, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` ticks of `cron` on the `tz` wall clock after `after`, in UTC (a preview)."""
    runs = []
    for _ in range(count):
        after = next_run_after(cron, tz, after)
        runs.append(after)
    return runs


def cron_describe(cron: str) -> str:
    """A cron expression in words ("At 03:17"), as it fires (normalised); the expression itself if unreadable."""
    from cron_descriptor import DescriptionTypeEnum, ExpressionDescriptor, Options, get_description

    options = Options()
    options.use_24hour_time_format = True
    options.day_of_week_start_index_zero = True  # cron's weekday 0 is Sunday, as croniter reads it
    try:
        normalised = cron_normalise(cron)
    except CronInvalid:
        return cron
    try:
        minute, hour, day, month, weekday = normalised.split()
        if day == "*" or weekday == "*":
            return get_description(normalised, options)
        # Both day fields: cron runs on either. cron_descriptor says so for one weekday
        # ("or on Monday") but reads a weekday range as a further restriction.
        parts = ExpressionDescriptor(normalised, options)
        weekdays = ExpressionDescriptor(f"{minute} {hour} * {month} {weekday}", options)
        either = weekdays.get_description(DescriptionTypeEnum.DAYOFWEEK).removeprefix(", ")
        either = either.removeprefix("or on ").removeprefix("only on ")
        text = (
            parts.get_description(DescriptionTypeEnum.TIMEOFDAY)
            + parts.get_description(DescriptionTypeEnum.DAYOFMONTH)
            + f", or on {either}"
            + parts.get_description(DescriptionTypeEnum.MONTH)
        )
        return text[:1].upper() + text[1:]
    except Exception:  # cron-descriptor raises its own several kinds; the expression is still true
        return normalised


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


def _wall_step(normalised: str):
    return _simple_step(normalised) or _croniter_step(normalised)


def _croniter_step(cron: str):
    def step(wall: datetime) -> datetime:
        return croniter(cron, wall).get_next(datetime)

    return step


@lru_cache(maxsize=2**17)  # every spread expression there is: 60 + 1,440 + 10,080 + 40,320
def _simple_step(cron: str):
    """A fast step for the shapes spread_cron makes: one minute; one hour or every hour; one day
    (1-28) or one weekday or every day; every month. Anything else: None, and croniter steps.

    `cron` is normalised. croniter costs ~70 µs a call; a sync of 100,000 subscriptions
    computes several hundred thousand next runs. tests/jobs/test_cron_properties.py checks
    that both agree on every expression this accepts.
    """
    minute, hour, day, month, weekday = cron.split()
    if month != "*" or not minute.isdigit() or any(not (f == "*" or f.isdigit()) for f in (hour, day, weekday)):
        return None
    if day != "*" and weekday != "*":
        return None  # cron's "either matches" rule: leave it to croniter
    minute_n = int(minute)
    hour_n = None if hour == "*" else int(hour)
    day_n = None if day == "*" else int(day)
    weekday_n = None if weekday == "*" else int(weekday) % 7
    if day_n is not None and day_n > 28:
        return None  # not in every month

    def matching_day(d: date) -> date:
        """The first date on or after `d` that the day fields allow."""
        if weekday_n is not None:
            # Python: Monday is 0; cron: Sunday is 0.
            return d + timedelta(days=(weekday_n - (d.weekday() + 1) % 7) % 7)
        if day_n is not None:
            if d.day <= day_n:
                return d.replace(day=day_n)
            return (d.replace(day=1) + timedelta(days=32)).replace(day=day_n)
        return d

    def step(wall: datetime) -> datetime:
        start = wall.replace(second=0, microsecond=0)
        today = start.date()
        if matching_day(today) == today:
            if hour_n is None:
                candidate = start.replace(minute=minute_n)
                if candidate <= wall:
                    candidate += timedelta(hours=1)
            else:
                candidate = start.replace(hour=hour_n, minute=minute_n)
            if candidate > wall and candidate.date() == today:
                return candidate
        # Today has no tick left: the first tick of the next day the day fields allow.
        return datetime.combine(matching_day(today + timedelta(days=1)), time(hour_n or 0, minute_n))

    return step
