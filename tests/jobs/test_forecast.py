"""jobs/forecast.py: the load forecast counts exactly what the firing would start, per UTC hour.

The reference is the per-row brute force: next_run_after from the window's start until past
its end, for every schedule row, bucketed by UTC hour.
"""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jobs.cron import spread_cron
from jobs.forecast import (
    forecast_brute_force,
    forecast_from_groups,
    schedule_forecast,
    scheduler_config_forecast_change,
)
from jobs.models import PeriodicJob, Schedule, SchedulerConfig
from tests.factories import SubscriptionFactory

DST_ZONES = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "America/St_Johns", "Pacific/Chatham"]
ZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", *DST_ZONES]
# Around the 2026 changes of the zones above (and some quiet weeks), so windows cross them.
STARTS = [
    datetime(2026, 3, 8, tzinfo=UTC),  # New York springs forward
    datetime(2026, 3, 29, tzinfo=UTC),  # London
    datetime(2026, 4, 5, tzinfo=UTC),  # Lord Howe falls back (30 min), Chatham
    datetime(2026, 9, 27, tzinfo=UTC),  # Chatham springs forward
    datetime(2026, 10, 4, tzinfo=UTC),  # Lord Howe springs forward
    datetime(2026, 10, 25, tzinfo=UTC),  # London falls back
    datetime(2026, 11, 1, tzinfo=UTC),  # New York, St John's fall back
    datetime(2026, 6, 15, tzinfo=UTC),
]
# What an operator or a customer may write for a periodic job: gaps and repeats collapse these.
HAND_WRITTEN = [
    "* * * * *",
    "*/5 * * * *",
    "*/15 2 * * *",
    "0 2,3 * * *",
    "30 1,2 * * *",
    "0,30 1-3 * * *",
    "59 1 * * *",
    "0 2 * * 0",
    "15 3 1,15 * 1",
    "0 0 29 2 *",
    "0 0 30 2 *",
    "0 9 * * mon-fri",
]

spread = st.builds(
    spread_cron,
    st.sampled_from(["hourly", "daily", "weekly", "monthly"]),
    st.integers(1, 10**6),
    st.sampled_from(["darkwatch.scan", "hometitle.scan", "reports.generate"]),
)
rows = st.tuples(
    st.one_of(spread, st.sampled_from(HAND_WRITTEN)),
    st.sampled_from(ZONES),
    st.sampled_from(["darkwatch.scan", "jobs.prune"]),
)
starts = st.builds(lambda base, hours: base + timedelta(hours=hours), st.sampled_from(STARTS), st.integers(-72, 48))


def nonzero(per_type: dict[str, list[int]]) -> dict[str, list[int]]:
    return {name: counts for name, counts in per_type.items() if any(counts)}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=1, max_size=12), starts, st.sampled_from([1, 5, 24, 168]))
@example([("30 2 * * *", "America/New_York", "a"), ("0 2,3 * * *", "America/New_York", "a")], STARTS[0], 168)
@example([("*/15 2 * * *", "Australia/Lord_Howe", "a")], datetime(2026, 10, 3, tzinfo=UTC), 168)
@example([("45 1 * * *", "Australia/Lord_Howe", "a")], datetime(2026, 4, 3, tzinfo=UTC), 168)
def test_the_forecast_is_the_per_row_count_of_what_fires(schedule_rows, start, hours):
    forecast = forecast_from_groups(Counter(schedule_rows), start=start, hours=hours)

    assert nonzero(forecast.per_type) == nonzero(forecast_brute_force(schedule_rows, start=start, hours=hours))
    assert forecast.schedules == len(schedule_rows)


def test_a_spring_forward_gap_runs_once_and_a_repeated_hour_once():
    # New York, 8 March 2026: 02:00-02:59 does not exist; 1 November: 01:00-01:59 happens twice.
    spring = forecast_from_groups(
        Counter({("30 2 * * *", "America/New_York", "a"): 1, ("0 2,3 * * *", "America/New_York", "a"): 1}),
        start=datetime(2026, 3, 8, 6, tzinfo=UTC),
        hours=2,
    )
    # 02:30 runs at 03:00 EDT (07:00 UTC); 02:00 and 03:00 are one instant, so one run.
    assert spring.per_type["a"] == [0, 2]
    autumn = forecast_from_groups(
        Counter({("30 1 * * *", "America/New_York", "a"): 1}), start=datetime(2026, 11, 1, 5, tzinfo=UTC), hours=2
    )
    assert autumn.per_type["a"] == [1, 0]  # 01:30 EDT only, not again at 01:30 EST


def test_half_hour_zones_split_an_hour_between_two_utc_hours():
    groups = Counter({(f"{minute} * * * *", "Asia/Kolkata", "a"): 1 for minute in (0, 29, 30, 59)})
    forecast = forecast_from_groups(groups, start=datetime(2026, 6, 1, tzinfo=UTC), hours=3)
    assert forecast.per_type["a"] == [4, 4, 4]  # each UTC hour gets :30 and :59 of one hour, :00 and :29 of the next
    assert forecast.peak == (datetime(2026, 6, 1, tzinfo=UTC), 4)


def test_unreadable_timings_are_counted_apart_not_forecast():
    groups = Counter(
        {("0 3 * * *", "Mars/Olympus", "a"): 2, ("61 * * * *", "UTC", "a"): 1, ("0 * * * *", "UTC", "a"): 1}
    )
    forecast = forecast_from_groups(groups, start=datetime(2026, 6, 1, tzinfo=UTC), hours=24)
    assert (forecast.unreadable, forecast.schedules, forecast.total) == (3, 1, 24)


# --- from the database ---------------------------------------------------------------------


@pytest.fixture
def configs():
    SchedulerConfig.objects.all().delete()
    return {
        "daily": SchedulerConfig.objects.create(tier="premium", job_type="darkwatch.scan", frequency="daily"),
        "off": SchedulerConfig.objects.create(
            tier="basic", job_type="hometitle.scan", frequency="daily", enabled=False
        ),
    }


def _tier_schedule(config, cron, tz="UTC", **fields):
    return Schedule.objects.create(
        subscription=SubscriptionFactory(tier=config.tier, timezone=tz),
        config=config,
        cron_expression=cron,
        timezone=tz,
        next_run_at=fields.pop("next_run_at", timezone.now()),
        **fields,
    )


def _periodic_schedule(cron, tz="UTC", *, enabled=True, job_type="jobs.prune", name=None):
    job = PeriodicJob.objects.create(
        name=name or f"periodic {cron} {tz} {enabled}",
        job_type=job_type,
        cron_expression=cron,
        timezone=tz,
        enabled=enabled,
    )
    return Schedule.objects.create(periodic_job=job, cron_expression=cron, timezone=tz, next_run_at=timezone.now())


@pytest.mark.django_db
@pytest.mark.usefixtures("without_builtin_jobs")  # it counts only the schedules it makes
def test_only_active_schedules_count_tier_and_periodic(configs):
    start = datetime(2026, 3, 28, tzinfo=UTC)
    counted = [
        _tier_schedule(configs["daily"], "10 3 * * *", "Europe/London"),
        _tier_schedule(configs["daily"], "40 1 * * *", "Europe/London"),
        _periodic_schedule("*/10 * * * *", "Australia/Lord_Howe"),
    ]
    _tier_schedule(configs["daily"], "0 * * * *", enabled=False)  # paused
    _tier_schedule(configs["daily"], "5 * * * *", next_run_at=None)  # broken
    _tier_schedule(configs["off"], "0 * * * *")  # waiting for its disabled config
    _periodic_schedule("* * * * *", enabled=False)  # its periodic job is disabled

    forecast = schedule_forecast(start=start, hours=72)

    rows = [
        (s.cron_expression, s.timezone, s.job_type) for s in Schedule.objects.filter(pk__in=[s.pk for s in counted])
    ]
    assert nonzero(forecast.per_type) == nonzero(forecast_brute_force(rows, start=start, hours=72))
    assert forecast.schedules == 3
    assert sum(forecast.per_type["jobs.prune"]) == 72 * 6
    # London springs forward on the 29th: 01:40 does not exist and runs at 02:00 BST (01:00 UTC).
    assert forecast.per_type["darkwatch.scan"][24 + 1] == 1
    assert schedule_forecast(start=start, hours=72, job_type="jobs.prune").job_types == ["jobs.prune"]


@pytest.mark.django_db
@pytest.mark.usefixtures("without_builtin_jobs")  # it counts only the schedules it makes
def test_a_config_change_forecast_is_what_the_sync_would_make(configs):
    from jobs.scheduling import schedules_sync_tier

    config = configs["daily"]
    subscriptions = [
        SubscriptionFactory(tier="premium", timezone=tz) for tz in ("UTC", "America/New_York", "Asia/Kolkata")
    ]
    SubscriptionFactory(tier="premium", status="cancelled")  # no schedule, now or after
    schedules_sync_tier("premium")
    paused = Schedule.objects.get(subscription=subscriptions[0], config=config)
    paused.enabled = False  # an operator paused this one; the change keeps it paused
    paused.save(update_fields=["enabled"])
    start = datetime(2026, 6, 1, tzinfo=UTC)

    proposed = SchedulerConfig.objects.get(pk=config.pk)
    proposed.frequency = "hourly"
    before, after = scheduler_config_forecast_change(config, proposed, start=start, hours=48)

    assert before.total == 2 * 2  # two active daily schedules, two days
    assert after.total == 2 * 48  # the same two, hourly; nothing saved:
    assert SchedulerConfig.objects.get(pk=config.pk).frequency == "daily"
    # ...and it is what the sync makes once saved.
    proposed.save()
    schedules_sync_tier("premium")
    assert schedule_forecast(start=start, hours=48).per_type == after.per_type

    off = SchedulerConfig.objects.get(pk=config.pk)
    off.enabled = False
    assert scheduler_config_forecast_change(config, off, start=start, hours=48)[1].total == 0


@pytest.mark.django_db
@pytest.mark.usefixtures("without_builtin_jobs")  # it counts only the schedules it makes
def test_a_periodic_job_change_forecast_swaps_its_one_row():
    from jobs.forecast import periodic_job_forecast_change

    start = datetime(2026, 6, 1, tzinfo=UTC)
    schedule = _periodic_schedule("0 * * * *", name="hourly prune")
    job = schedule.periodic_job

    before, after = periodic_job_forecast_change(
        job, cron="*/15 * * * *", tz="Asia/Kolkata", job_type="jobs.prune", enabled=True, start=start, hours=24
    )
    assert (before.total, after.total) == (24, 96)
    disabled = periodic_job_forecast_change(
        job, cron="0 * * * *", tz="UTC", job_type="jobs.prune", enabled=False, start=start, hours=24
    )[1]
    assert disabled.total == 0
    added = periodic_job_forecast_change(
        None, cron="30 9 * * *", tz="UTC", job_type="jobs.monitor", enabled=True, start=start, hours=24
    )[1]
    assert added.per_type["jobs.monitor"][9] == 1 and added.total == 25


@pytest.mark.django_db
@pytest.mark.usefixtures("without_builtin_jobs")  # it counts only the schedules it makes
def test_the_forecast_is_one_grouped_query_however_many_schedules(configs, django_assert_num_queries):
    for minute in range(30):
        _tier_schedule(configs["daily"], f"{minute} 3 * * *", "America/New_York")
    with django_assert_num_queries(1) as captured:
        forecast = schedule_forecast(start=datetime(2026, 6, 1, tzinfo=UTC), hours=24)
    assert "GROUP BY" in captured.captured_queries[0]["sql"]
    assert forecast.per_type["darkwatch.scan"][7] == 30  # 03:xx EDT is 07:xx UTC
