"""jobs/cron.py against an independent cron (cronsim, test-only), for random five-field expressions.

- validity <=> "has a next run" (and cronsim agrees which expressions have none);
- the fast path agrees with the generic (croniter) path wherever it takes an expression;
- the description, the preview and next_run_after agree;
- our ticks are cronsim's plain local-clock ticks in UTC, and in a DST zone they are
  cronsim's wall ticks with the DST policy of jobs/cron.py's docstring applied on top.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
from cronsim import CronSim, CronSimError
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from jobs.cron import (
    _croniter_step,
    _simple_step,
    cron_check,
    cron_describe,
    cron_normalise,
    get_zone,
    next_run_after,
    next_runs,
    validate_cron,
)
from jobs.errors import CronInvalid, CronNeverRuns

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (lowest, highest, names): weekday 7 is Sunday again.
FIELDS = ((0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, MONTHS), (0, 7, WEEKDAYS))
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def spell(draw, field, number):
    """A number as cron may spell it: digits, or for months and weekdays a name in any case."""
    names = FIELDS[field][2]
    index = number - (field == 3)
    if names and index < len(names) and draw(st.booleans()):
        name = names[index]
        return name.upper() if draw(st.booleans()) else name
    return str(number)


@st.composite
def term(draw, field):
    low, high, _ = FIELDS[field]
    kind = draw(st.sampled_from(["value", "range", "one-value range", "star step", "start step", "star"]))
    step = draw(st.integers(1, high - low + 3))
    if kind == "star":
        return "*"
    if kind == "value":
        return spell(draw, field, draw(st.integers(low, high)))
    if kind == "star step":
        return f"*/{step}"
    if kind == "start step":
        return f"{spell(draw, field, draw(st.integers(low, high)))}/{step}"
    first = draw(st.integers(low, high))
    last = first if kind == "one-value range" else draw(st.integers(first, high))
    text = f"{spell(draw, field, first)}-{spell(draw, field, last)}"
    return text + (f"/{step}" if draw(st.booleans()) else "")


CRON_FIELDS = [
    st.one_of(st.just("*"), term(field), st.lists(term(field), min_size=2, max_size=3).map(",".join))
    for field in range(5)
]


# Dates that never occur, or only in leap years: late days in short months.
impossible_days = st.tuples(
    st.sampled_from(["29", "30", "31", "30,31", "29-31", "31"]),
    st.sampled_from(["2", "feb", "4", "2,4,6", "4-6/2", "9,11", "11", "2-4"]),
)


@st.composite
def expressions(draw):
    minute, hour, day, month, weekday = (draw(strategy) for strategy in CRON_FIELDS)
    if draw(st.integers(0, 4)) == 0:
        day, month = draw(impossible_days)
        weekday = draw(st.sampled_from(["*", weekday]))
    return f"{minute} {hour} {day} {month} {weekday}"


# Shapes the fast path takes (spread_cron's, and every hour of one day), spelled several ways.
def _single(field, low, high):
    number = st.integers(low, high)
    return st.one_of(number.map(str), number.map(lambda n: f"{n}-{n}"))


fast_shapes = (
    st.tuples(
        _single(0, 0, 59),
        st.one_of(st.just("*"), _single(1, 0, 23)),
        st.one_of(st.just("*"), _single(2, 1, 31)),
        st.one_of(st.just("*"), _single(4, 0, 7)),
    )
    .filter(lambda fields: fields[2] == "*" or fields[3] == "*")
    .map(lambda f: f"{f[0]} {f[1]} {f[2]} * {f[3]}")
)

walls = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31))


def cronsim_ticks(cron: str, wall: datetime, count: int) -> list[datetime]:
    iterator = CronSim(cron, wall.replace(microsecond=0))
    return [next(iterator) for _ in range(count)]


def cronsim_accepts(cron: str) -> bool:
    try:
        CronSim(cron, datetime(2024, 1, 1))
    except CronSimError:
        return False
    return True


def as_wall_utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


# --- validity <=> a next run ------------------------------------------------------------


@FAST
@given(expressions())
@example("0 * * * 1")
@example("30 * 1 * *")
@example("0 3-3 * * *")
@example("0 1-1/3 * * *")
@example("0 0 * * 1/3")
@example("0 0 30 2 *")
@example("0 0 31 4 *")
@example("0 0 31 2,4,6 *")
@example("0 0 29 2 *")
def test_valid_if_and_only_if_it_has_a_next_run(cron):
    after = datetime(2026, 5, 4, 10, 20, tzinfo=UTC)
    try:
        validate_cron(cron)
    except ValidationError as refused:
        with pytest.raises(CronInvalid) as error:
            next_run_after(cron, "UTC", after)
        never = refused.code == "cron_never_runs"
        assert never == isinstance(error.value, CronNeverRuns)
        if never:
            # Well-formed, dates never occur: cronsim says the same.
            assert not cronsim_accepts(cron)
        else:
            # Unreadable for cronsim too, or read differently by croniter, cronsim and Vixie
            # cron (the message says so): refused with a reason, not guessed.
            assert "crons read" in refused.messages[0] or not cronsim_accepts(cron), (cron, refused.messages)
        return
    assert cronsim_accepts(cron)
    assert next_run_after(cron, "UTC", after) > after


# --- our ticks are cron's ticks -----------------------------------------------------------


@FAST
@given(expressions(), walls)
@example("0 * * * 1", datetime(2026, 5, 4, 10, 20))
@example("30 * 1 * *", datetime(2026, 5, 4, 10, 20))
@example("0 3-3 * * *", datetime(2026, 5, 4, 10, 20))
@example("0 1-1/3 * * *", datetime(2026, 5, 4, 10, 20))
def test_ticks_in_utc_are_cronsims(cron, wall):
    try:
        cron_check(cron)
    except CronInvalid:
        assume(False)
    ours = [as_wall_utc(tick) for tick in next_runs(cron, "UTC", wall.replace(tzinfo=UTC), 4)]
    assert ours == cronsim_ticks(cron, wall, 4)


def policy(wall: datetime, zone) -> datetime:
    """The DST policy, written again from its description: a wall time that does not exist
    runs at the first instant after the gap; one that happens twice, the first time."""
    exists = lambda w: w.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == w  # noqa: E731
    if exists(wall):
        return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    later = wall.replace(second=0, microsecond=0)
    while not exists(later):
        later += timedelta(minutes=1)
    # The gap ends at `later` on the wall clock; its first instant.
    return later.replace(tzinfo=zone, fold=0).astimezone(UTC)


# Around 2026's transitions in New York (March 8, November 1) and Lord Howe's half-hour ones (April 5, October 4).
near_transitions = st.tuples(
    st.sampled_from(
        [
            ("America/New_York", datetime(2026, 3, 8, 7)),
            ("America/New_York", datetime(2026, 11, 1, 6)),
            ("Australia/Lord_Howe", datetime(2026, 4, 4, 15)),
            ("Australia/Lord_Howe", datetime(2026, 10, 3, 15, 30)),
        ]
    ),
    st.integers(-3 * 24 * 60, 2 * 24 * 60),
).map(lambda pair: (pair[0][0], (pair[0][1] + timedelta(minutes=pair[1])).replace(tzinfo=UTC)))


@FAST
@given(expressions(), near_transitions)
@example("30 2 * * *", ("America/New_York", datetime(2026, 3, 7, 12, tzinfo=UTC)))
@example("30 * * * *", ("America/New_York", datetime(2026, 11, 1, 4, tzinfo=UTC)))
@example("0 3-3 * * *", ("America/New_York", datetime(2026, 3, 7, 12, tzinfo=UTC)))
def test_ticks_in_a_dst_zone_are_cronsims_wall_ticks_with_our_policy(cron, where):
    tz, after = where
    try:
        cron_check(cron)
    except CronInvalid:
        assume(False)
    zone = get_zone(tz)
    expected, last = [], after
    walls = CronSim(cron, after.astimezone(zone).replace(tzinfo=None, microsecond=0))
    while len(expected) < 4:
        instant = policy(next(walls), zone)
        if instant > last:  # a repeated wall time, or two in one gap, runs once
            expected.append(instant)
            last = instant
    assert next_runs(cron, tz, after, 4) == expected


# --- the fast path ------------------------------------------------------------------------


@FAST
@given(fast_shapes, st.lists(walls, min_size=3, max_size=3))
@example("0 * * * 1", [datetime(2026, 5, 4, 10, 20)] * 3)
@example("30 * 1 * *", [datetime(2026, 5, 4, 10, 20)] * 3)
@example("0 * * * 6", [datetime(2026, 5, 9, 23, 0)] * 3)
@example("59 23 28 * *", [datetime(2026, 2, 28, 23, 59)] * 3)
def test_the_fast_path_agrees_with_the_generic_path(cron, starts):
    try:
        normalised = cron_check(cron)
    except CronInvalid:
        assume(False)
    fast = _simple_step(normalised)
    day = normalised.split()[2]
    assert fast is not None or (day != "*" and int(day) > 28)  # it takes every shape it is meant for
    assume(fast is not None)
    slow = _croniter_step(normalised)
    for wall in starts:
        assert fast(wall) == slow(wall), (cron, wall)
        # Several steps on: where hours and days roll over.
        a = b = wall
        for _ in range(8):
            a, b = fast(a), slow(b)
            assert a == b, (cron, wall)


# --- description, preview and firing agree ------------------------------------------------


@FAST
@given(expressions(), walls)
@example("0 * * * 1", datetime(2026, 5, 9, 10))
@example("* * * * */2,*/2", datetime(2025, 1, 31))
@example("* * 6 * 0-1", datetime(2025, 1, 1))
@example("0-0 0,0/2 * * *", datetime(2025, 1, 1))
@example("0 3-3 * * *", datetime(2026, 5, 4, 10, 20))
@example("0 1-1/3 * * *", datetime(2026, 5, 4, 10, 20))
@example("30 * 1 * *", datetime(2026, 5, 4, 10, 20))
def test_the_description_holds_for_every_previewed_tick(cron, wall):
    try:
        cron_check(cron)
    except CronInvalid:
        assume(False)
    after = wall.replace(tzinfo=UTC)
    words = cron_describe(cron)
    assert words == cron_describe(cron_normalise(cron))  # one reading of the expression
    preview = next_runs(cron, "UTC", after, 5)
    # The preview is next_run_after, tick after tick.
    fired, at = [], after
    for _ in preview:
        at = next_run_after(cron, "UTC", at)
        fired.append(at)
    assert preview == fired

    either_day = ", or on " in words
    only_on = re.search(r"only on (\w+day(?:(?:, and |, | and )\w+day)*)(?=,|$)", words)
    if only_on and not either_day:
        days = set(re.findall(r"\w+day", only_on.group(1)))
        assert {DAY_NAMES[tick.weekday()] for tick in preview} <= days, (words, preview)
    at_time = re.match(r"At (\d\d):(\d\d)(?:$|, (?!\d\d:\d\d))", words)  # one time, not a list of them
    if at_time:
        assert {(tick.hour, tick.minute) for tick in preview} == {tuple(map(int, at_time.groups()))}, words
    between = re.search(r"between (\d\d):00 and (\d\d):59", words)
    if between and "every" not in words.split("between")[0].lower():
        low, high = map(int, between.groups())
        assert all(low <= tick.hour <= high for tick in preview), (words, preview)
    on_day = re.search(r"on day (\d+) of the month", words)
    if on_day and not either_day:
        assert {tick.day for tick in preview} == {int(on_day.group(1))}, (words, preview)
    only_in = re.search(r"only in (\w+)$", words)
    if only_in:
        assert {f"{tick:%B}" for tick in preview} == {only_in.group(1)}, (words, preview)
