"""Schedule time: cron validation, DST in America/New_York, spread, catch-up, and the fast path."""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from jobs.cron import (
    _croniter_step,
    _simple_step,
    cron_describe,
    cron_normalise,
    due_tick,
    next_run_after,
    next_runs,
    spread_cron,
    validate_cron,
)
from jobs.errors import CronNeverRuns, NextRunUnknown

NY = "America/New_York"


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("value", ["61 * * * *", "* * *", "every day", "", "* * * * * *", "0 25 * * *"])
def test_invalid_cron_is_refused(value):
    with pytest.raises(ValidationError) as error:
        validate_cron(value)
    assert error.value.code == "invalid_cron"


def test_spring_forward_nonexistent_time_runs_once_when_the_gap_ends():
    # 2026-03-08: New York clocks jump from 02:00 EST to 03:00 EDT; 02:30 does not exist.
    first = next_run_after("30 2 * * *", NY, utc(2026, 3, 7, 12))
    assert first == utc(2026, 3, 8, 7, 0)  # 03:00 EDT
    assert next_run_after("30 2 * * *", NY, first) == utc(2026, 3, 9, 6, 30)  # 02:30 EDT next day


def test_spring_forward_hourly_runs_once_in_the_missing_hour():
    ticks = [utc(2026, 3, 8, 5, 0)]
    for _ in range(3):
        ticks.append(next_run_after("30 * * * *", NY, ticks[-1]))
    # 00:30 EST, 01:30 EST, then 02:30 (missing) at 03:00 EDT, then 03:30 EDT.
    assert ticks[1:] == [utc(2026, 3, 8, 5, 30), utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 0)]
    assert next_run_after("30 * * * *", NY, ticks[-1]) == utc(2026, 3, 8, 7, 30)


def test_fall_back_repeated_time_runs_once_at_its_first_occurrence():
    # 2026-11-01: 01:00-02:00 happens twice (EDT, then EST).
    first = next_run_after("30 1 * * *", NY, utc(2026, 10, 31, 12))
    assert first == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert next_run_after("30 1 * * *", NY, first) == utc(2026, 11, 2, 6, 30)  # next day, EST
    # Hourly: 01:30 EDT runs, the second 01:30 (EST) does not, then 02:30 EST.
    assert next_run_after("30 * * * *", NY, first) == utc(2026, 11, 1, 7, 30)
    # Even when asked from inside the repeated hour.
    assert next_run_after("30 1 * * *", NY, utc(2026, 11, 1, 6, 10)) == utc(2026, 11, 2, 6, 30)


def test_spread_is_stable_and_inside_the_period():
    for subscription_id in range(1, 500):
        monthly = spread_cron("monthly", subscription_id, "darkwatch.scan")
        assert monthly == spread_cron("monthly", subscription_id, "darkwatch.scan")
        minute, hour, day, month, weekday = monthly.split()
        assert 0 <= int(minute) < 60 and 0 <= int(hour) < 24 and 1 <= int(day) <= 28
        assert (month, weekday) == ("*", "*")
        assert 0 <= int(spread_cron("weekly", subscription_id, "hometitle.scan").split()[4]) <= 6


def test_spread_puts_a_tier_evenly_over_the_period():
    days = Counter(int(spread_cron("monthly", pk, "darkwatch.scan").split()[2]) for pk in range(1, 2801))
    assert set(days) == set(range(1, 29))
    assert max(days.values()) - min(days.values()) <= 4  # 100 per day, give or take
    minutes = Counter(spread_cron("hourly", pk, "darkwatch.scan").split()[0] for pk in range(1, 601))
    assert max(minutes.values()) <= 12 and min(minutes.values()) >= 8


def test_two_products_of_one_subscription_do_not_coincide():
    assert spread_cron("daily", 42, "darkwatch.scan") != spread_cron("daily", 42, "hometitle.scan")


def test_catch_up_runs_the_latest_missed_tick_once():
    # Due at 10:00; the scheduler was down until 13:20: ticks 10:00, 11:00, 12:00, 13:00 missed.
    planned, following = due_tick("0 * * * *", "UTC", utc(2026, 5, 1, 10), utc(2026, 5, 1, 13, 20))
    assert (planned, following) == (utc(2026, 5, 1, 13), utc(2026, 5, 1, 14))


def test_catch_up_after_a_long_outage_stays_cheap():
    planned, following = due_tick("0 * * * *", "UTC", utc(2020, 1, 1), utc(2026, 5, 1, 13, 20))
    assert (planned, following) == (utc(2026, 5, 1, 13), utc(2026, 5, 1, 14))


def test_fast_path_agrees_with_croniter():
    rng = random.Random(7)
    crons = [spread_cron(freq, pk, "x.y") for freq in ("hourly", "daily", "weekly", "monthly") for pk in range(40)]
    for cron in crons:
        fast, slow = _simple_step(cron), _croniter_step(cron)
        assert fast is not None
        for _ in range(20):
            wall = datetime(2026, 1, 1) + timedelta(minutes=rng.randrange(0, 366 * 24 * 60), seconds=rng.randrange(60))
            assert fast(wall) == slow(wall), (cron, wall)


def test_custom_expressions_go_through_croniter():
    assert _simple_step("*/15 * * * *") is None
    assert next_run_after("*/15 9-17 * * 1-5", "UTC", utc(2026, 11, 20, 17, 50)) == utc(2026, 11, 23, 9, 0)


# --- issue 15: what the fast path, one-value ranges and impossible dates got wrong -----------

MONDAY_1020 = utc(2026, 5, 4, 10, 20)  # a Monday


def test_every_hour_of_one_weekday_stays_on_that_weekday():
    runs = next_runs("0 * * * 1", "UTC", MONDAY_1020, 20)
    assert runs[:2] == [utc(2026, 5, 4, 11), utc(2026, 5, 4, 12)]
    assert {run.weekday() for run in runs} == {0}  # Monday, Python's 0
    # After Monday's last hour, the next Monday's first.
    assert next_run_after("0 * * * 1", "UTC", utc(2026, 5, 4, 23, 0)) == utc(2026, 5, 11, 0, 0)


def test_every_hour_of_one_day_of_the_month_stays_on_that_day():
    runs = next_runs("30 * 1 * *", "UTC", MONDAY_1020, 30)
    assert runs[0] == utc(2026, 6, 1, 0, 30)
    assert runs[23] == utc(2026, 6, 1, 23, 30) and runs[24] == utc(2026, 7, 1, 0, 30)
    assert {run.day for run in runs} == {1}


@pytest.mark.parametrize(
    ("cron", "means"),
    [
        ("0 3-3 * * *", "0 3 * * *"),
        ("0-0 3 * * *", "0 3 * * *"),
        ("0 3 1-1 * *", "0 3 1 * *"),
        ("0 3 * 2-2 *", "0 3 * 2 *"),
        ("0 3 * * 2-2", "0 3 * * 2"),
        ("0 3 * * 7-7", "0 3 * * 0"),
        ("*/90 * * * *", "0 * * * *"),
        ("0 */25 * * *", "0 0 * * *"),
    ],
)
def test_a_term_that_yields_one_value_means_that_value_in_firing_preview_and_words(cron, means):
    assert cron_normalise(cron) == means
    assert next_runs(cron, NY, MONDAY_1020, 10) == next_runs(means, NY, MONDAY_1020, 10)
    assert cron_describe(cron) == cron_describe(means)


def test_one_value_hour_range_fires_once_a_day():
    assert next_runs("0 3-3 * * *", "UTC", MONDAY_1020, 2) == [utc(2026, 5, 5, 3), utc(2026, 5, 6, 3)]
    assert cron_describe("0 3-3 * * *") == "At 03:00"


@pytest.mark.parametrize("cron", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6 *", "0 0 30,31 2 *", "0 0 31 9,11 *"])
def test_dates_that_never_occur_are_refused(cron):
    with pytest.raises(ValidationError) as error:
        validate_cron(cron)
    assert error.value.code == "cron_never_runs"
    with pytest.raises(CronNeverRuns):
        next_run_after(cron, "UTC", MONDAY_1020)


def test_a_leap_day_is_a_date_that_occurs():
    validate_cron("0 0 29 2 *")
    assert next_run_after("0 0 29 2 *", "UTC", MONDAY_1020) == utc(2028, 2, 29)


@pytest.mark.parametrize(
    "cron",
    [
        "0 5-3 * * *",  # croniter reads it as every hour, Vixie cron refuses it
        "0 0 ? * *",
        "0 0 L * *",
        "0 0 * * 1#2",
        "0 0 */2 * 1",  # croniter: every other day OR Monday; Vixie cron: odd days that are Mondays
        "0 0 1 * */2",
        "0 1-1/3 * * *",  # Vixie cron: 01:00; croniter: every 3 hours from 00:00; cronsim: from 01:00
        "0 0 * * 1/3",  # croniter: Monday, Thursday; cronsim: also Sunday (7)
        "*/0 * * * *",
        "0 0 * foo *",
        "0 0 0 * *",
        "0 0 * * 8",
    ],
)
def test_what_crons_read_differently_is_refused_with_a_reason(cron):
    with pytest.raises(ValidationError) as error:
        validate_cron(cron)
    assert error.value.code == "invalid_cron"
    assert ": " in error.value.messages[0].split("weekday)")[-1]  # the reason follows


def test_names_lists_and_the_either_day_rule_still_work():
    assert next_runs("0 9 * jun mon-fri", "UTC", MONDAY_1020, 1) == [utc(2026, 6, 1, 9)]
    # Both day fields given: either matches, as in every cron (the 15th is a Friday).
    assert next_runs("0 9 15 * mon", "UTC", MONDAY_1020, 2) == [utc(2026, 5, 11, 9), utc(2026, 5, 15, 9)]
    assert cron_describe("0 9 15 * mon") == "At 09:00, on day 15 of the month, or on Monday"


def test_a_bad_zone_or_expression_is_next_run_unknown():
    with pytest.raises(NextRunUnknown):
        next_run_after("0 3 * * *", "Mars/Olympus", MONDAY_1020)
    with pytest.raises(NextRunUnknown):
        next_run_after("61 * * * *", "UTC", MONDAY_1020)
