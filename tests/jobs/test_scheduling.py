"""Tier schedules: rows and entries follow subscriptions and configs; ticks become runs."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rq_scheduler import Scheduler

from jobs import entries
from jobs.models import JobRun, Schedule, SchedulerConfig
from jobs.scheduler import KordantScheduler
from jobs.scheduling import (
    HEARTBEAT_KEY,
    schedule_set_enabled,
    schedule_trigger_event,
    schedule_trigger_now,
    scheduler_config_trigger_now,
    schedules_fire,
    schedules_sync_all,
    schedules_sync_tier,
)
from jobs.worker import JSONJob
from kordant.models import Subscription
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)
START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def default_configs(tier_configs):
    """Every test here starts from the design's tier table."""


@pytest.fixture
def traveller():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def ping_config():
    """A schedulable type with a real handler: Plus gets an hourly ping at minute 0."""
    return SchedulerConfig.objects.create(tier="plus", job_type="jobs.ping", cron_expression="0 * * * *")


@pytest.fixture
def ping_only(ping_config):
    """The hourly ping and no other config: whether a spread weekly or monthly tick also falls
    due in a test's window depends on the subscription ids, which PostgreSQL's sequences
    carry over from earlier tests."""
    SchedulerConfig.objects.exclude(pk=ping_config.pk).update(enabled=False)
    return ping_config


def schedules_of(subscription):
    return {s.config.job_type: s for s in Schedule.objects.filter(subscription=subscription).select_related("config")}


def entry_score(redis_conn, schedule):
    return redis_conn.zscore(entries.SCHEDULED_KEY, schedule.entry_id)


def ping_schedule(subscription):
    return Schedule.objects.get(subscription=subscription, config__job_type="jobs.ping")


# --- rows and entries follow subscriptions ---------------------------------------------


def test_premium_subscription_gets_exactly_its_tiers_schedules_and_entries(redis_conn, traveller):
    subscription = SubscriptionFactory(tier="premium", timezone="America/New_York")

    schedules = schedules_of(subscription)
    assert set(schedules) == {"darkwatch.scan", "hometitle.scan", "reports.generate"}
    for schedule in schedules.values():
        assert schedule.timezone == "America/New_York" and schedule.next_run_at > START
        assert entry_score(redis_conn, schedule) == schedule.next_run_at.timestamp()
        assert redis_conn.hget(f"rq:job:{schedule.entry_id}", "data") is not None
    assert schedules["darkwatch.scan"].cron_expression.endswith(" * * * *")  # hourly, spread minute
    assert redis_conn.zcard(entries.SCHEDULED_KEY) == 3


def test_tier_change_replaces_the_schedules(redis_conn, traveller):
    subscription = SubscriptionFactory(tier="premium")
    old = schedules_of(subscription)

    subscription.tier = Subscription.Tier.BASIC
    subscription.save()

    new = schedules_of(subscription)
    assert set(new) == {"darkwatch.scan", "hometitle.scan"}
    assert all(s.config.tier == "basic" for s in new.values())
    assert new["darkwatch.scan"].cron_expression.split()[2] != "*"  # monthly: a day of the month
    assert not any(entry_score(redis_conn, s) for s in old.values())
    assert redis_conn.zcard(entries.SCHEDULED_KEY) == 2
    assert not redis_conn.exists(*(f"rq:job:{s.entry_id}" for s in old.values()))


def test_cancelling_removes_schedules_and_entries(redis_conn, traveller):
    subscription = SubscriptionFactory(tier="plus")
    assert redis_conn.zcard(entries.SCHEDULED_KEY) == 3

    subscription.status = Subscription.Status.CANCELLED
    subscription.save()

    assert not Schedule.objects.exists()
    assert redis_conn.zcard(entries.SCHEDULED_KEY) == 0
    assert not redis_conn.keys("rq:job:schedule-*")


def test_past_due_keeps_its_schedules(traveller):
    subscription = SubscriptionFactory(tier="plus")
    subscription.status = Subscription.Status.PAST_DUE
    subscription.save()
    assert len(schedules_of(subscription)) == 3


def test_deleting_a_subscription_removes_schedules_and_entries(redis_conn, traveller):
    subscription = SubscriptionFactory(tier="premium")
    SubscriptionFactory(tier="basic")

    subscription.delete()

    assert set(Schedule.objects.values_list("config__tier", flat=True)) == {"basic"}
    assert redis_conn.zcard(entries.SCHEDULED_KEY) == 2


def test_timezone_change_moves_the_next_run(traveller):
    subscription = SubscriptionFactory(tier="premium", timezone="UTC")
    before = schedules_of(subscription)["hometitle.scan"]
    subscription.timezone = "Asia/Tokyo"
    subscription.save()
    after = schedules_of(subscription)["hometitle.scan"]
    assert after.pk == before.pk and after.timezone == "Asia/Tokyo"
    assert after.next_run_at != before.next_run_at


# --- configs ---------------------------------------------------------------------------


def test_disabling_a_config_removes_the_tiers_entries_and_enabling_restores_them(redis_conn, traveller):
    subscriptions = [SubscriptionFactory(tier="plus") for _ in range(3)]
    SubscriptionFactory(tier="basic")
    config = SchedulerConfig.objects.get(tier="plus", job_type="darkwatch.scan")
    scans = [schedules_of(s)["darkwatch.scan"] for s in subscriptions]

    config.enabled = False
    config.save()
    assert not any(entry_score(redis_conn, s) for s in scans)
    assert redis_conn.zcard(entries.SCHEDULED_KEY) == 3 * 2 + 2  # the rest stay

    traveller.shift(timedelta(days=30))  # enabling later starts from now, no catch-up burst
    config.enabled = True
    config.save()
    for schedule in scans:
        schedule.refresh_from_db()
        assert schedule.next_run_at > timezone.now()
        assert entry_score(redis_conn, schedule) == schedule.next_run_at.timestamp()


def test_editing_a_configs_frequency_resyncs_its_tier(traveller):
    subscription = SubscriptionFactory(tier="plus")
    config = SchedulerConfig.objects.get(tier="plus", job_type="hometitle.scan")
    config.frequency = "daily"
    config.save()
    assert schedules_of(subscription)["hometitle.scan"].cron_expression.split()[2:] == ["*", "*", "*"]


def test_a_large_tier_resyncs_as_a_background_job(settings, traveller, run_worker):
    settings.JOBS_SYNC_INLINE_LIMIT = 1
    subscriptions = [SubscriptionFactory(tier="basic") for _ in range(2)]
    config = SchedulerConfig.objects.get(tier="basic", job_type="darkwatch.scan")
    config.frequency = "weekly"
    config.save()
    run = JobRun.objects.get(job_type="jobs.sync_tier")
    assert run.payload == {"tier": "basic"}
    assert schedules_of(subscriptions[0])["darkwatch.scan"].cron_expression.split()[4] == "*"  # not yet

    run_worker()

    assert all(schedules_of(s)["darkwatch.scan"].cron_expression.split()[4] != "*" for s in subscriptions)
    run.refresh_from_db()
    assert run.status == "completed"


@pytest.mark.parametrize("cron", ["61 * * * *", "every hour", "* * *"])
def test_invalid_cron_is_refused_with_a_field_error(cron):
    config = SchedulerConfig(tier="plus", job_type="jobs.ping", cron_expression=cron)
    with pytest.raises(ValidationError) as error:
        config.full_clean()
    assert "cron_expression" in error.value.message_dict
    with pytest.raises(ValidationError):
        config.save()
    assert not SchedulerConfig.objects.filter(job_type="jobs.ping").exists()


def test_a_config_needs_exactly_one_of_frequency_and_cron():
    with pytest.raises(ValidationError, match="either a frequency or a cron"):
        SchedulerConfig(tier="plus", job_type="jobs.ping").save()
    with pytest.raises(ValidationError, match="either a frequency or a cron"):
        SchedulerConfig(tier="plus", job_type="jobs.ping", frequency="daily", cron_expression="0 * * * *").save()


def test_unknown_timezone_on_a_schedule_is_refused(traveller):
    schedule = next(iter(schedules_of(SubscriptionFactory(tier="basic")).values()))
    schedule.timezone = "Mars/Olympus_Mons"
    with pytest.raises(ValidationError) as error:
        schedule.full_clean()
    assert "timezone" in error.value.message_dict
    with pytest.raises(ValidationError):
        schedule.save()


# --- firing ----------------------------------------------------------------------------


def test_a_due_entry_makes_one_cron_run_that_a_worker_completes(redis_conn, traveller, ping_only, run_worker):
    subscription = SubscriptionFactory(tier="plus")
    schedule = ping_schedule(subscription)
    assert schedule.next_run_at == START + timedelta(hours=1)

    traveller.move_to(schedule.next_run_at + timedelta(seconds=1))
    report = KordantScheduler(connection=redis_conn).fire_due()
    assert report.queued == 1

    run = JobRun.objects.get(schedule=schedule)
    assert run.trigger == "cron" and run.planned_for == START + timedelta(hours=1)
    assert run.subscription_id == subscription.pk
    run_worker()
    run.refresh_from_db()
    assert run.status == "completed"
    assert run.result == {"message": f"scheduled ping for subscription {subscription.pk}"}
    schedule.refresh_from_db()
    assert (schedule.last_run_id, schedule.last_run_at, schedule.run_count) == (run.pk, run.planned_for, 1)
    assert schedule.next_run_at == START + timedelta(hours=2)
    assert entry_score(redis_conn, schedule) == schedule.next_run_at.timestamp()
    assert schedule.last_status == "queued"

    KordantScheduler(connection=redis_conn).enqueue_jobs()  # the next pass records the outcome
    schedule.refresh_from_db()
    assert schedule.last_status == "completed"


def test_an_entry_not_yet_due_by_its_row_is_only_moved(redis_conn, traveller, ping_config):
    schedule = ping_schedule(SubscriptionFactory(tier="plus"))
    redis_conn.zadd(entries.SCHEDULED_KEY, {schedule.entry_id: START.timestamp() - 60})  # a stale, early score

    report = KordantScheduler(connection=redis_conn).fire_due()

    assert report.moved == 1 and report.fired == 0
    assert not JobRun.objects.exists()
    assert entry_score(redis_conn, schedule) == schedule.next_run_at.timestamp()


def test_the_same_tick_fired_twice_makes_one_run(redis_conn, traveller, ping_config):
    schedule = ping_schedule(SubscriptionFactory(tier="plus"))
    tick = schedule.next_run_at
    traveller.move_to(tick + timedelta(seconds=1))

    first = schedules_fire([schedule.pk])
    # A second scheduler that read the row before the first one moved it fires the same tick.
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=tick)
    second = schedules_fire([schedule.pk])

    assert (first.queued, second.queued, second.duplicate) == (1, 0, 1)
    assert JobRun.objects.filter(schedule=schedule).count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers; PostgreSQL races in CI")
def test_two_schedulers_racing_on_the_same_ticks_make_one_run_each(redis_conn, traveller, ping_config):
    schedules = [ping_schedule(SubscriptionFactory(tier="plus")) for _ in range(20)]
    traveller.move_to(START + timedelta(hours=1, seconds=1))
    barrier = threading.Barrier(2)

    def fire():
        barrier.wait()
        try:
            schedules_fire([s.pk for s in schedules])
        finally:
            connection.close()

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert JobRun.objects.filter(trigger="cron").count() == 20
    assert sum(s.run_count for s in Schedule.objects.filter(config=ping_config)) == 20


def test_overlap_skip_records_a_skipped_run_while_the_previous_is_active(redis_conn, traveller, ping_config):
    schedule = ping_schedule(SubscriptionFactory(tier="plus"))
    scheduler = KordantScheduler(connection=redis_conn)
    traveller.move_to(START + timedelta(hours=1, seconds=1))
    scheduler.fire_due()  # queued, no worker runs it
    traveller.move_to(START + timedelta(hours=2, seconds=1))

    report = scheduler.fire_due()

    assert report.skipped == 1
    runs = list(JobRun.objects.filter(schedule=schedule).order_by("planned_for"))
    assert [r.status for r in runs] == ["queued", "skipped"]
    assert "still active" in runs[1].events.get().message
    schedule.refresh_from_db()
    assert (schedule.last_status, schedule.run_count) == ("skipped", 1)
    assert redis_conn.llen("rq:queue:default") == 1


def test_overlap_allow_runs_alongside(redis_conn, traveller, ping_config):
    ping_config.overlap = SchedulerConfig.Overlap.ALLOW
    ping_config.save()
    schedule = ping_schedule(SubscriptionFactory(tier="plus"))
    scheduler = KordantScheduler(connection=redis_conn)
    for hour in (1, 2):
        traveller.move_to(START + timedelta(hours=hour, seconds=1))
        scheduler.fire_due()
    assert list(JobRun.objects.filter(schedule=schedule).values_list("status", flat=True)) == ["queued", "queued"]


def test_catch_up_after_three_missed_ticks_makes_one_run(redis_conn, traveller, ping_only):
    schedule = ping_schedule(SubscriptionFactory(tier="plus"))
    # The scheduler was down through 13:00, 14:00 and 15:00.
    traveller.move_to(START + timedelta(hours=3, minutes=30))

    report = KordantScheduler(connection=redis_conn).fire_due()

    assert report.queued == 1
    run = JobRun.objects.get(schedule=schedule)
    assert run.planned_for == START + timedelta(hours=3)
    schedule.refresh_from_db()
    assert schedule.next_run_at == START + timedelta(hours=4)


def test_a_tick_of_an_uninstalled_job_type_fails_visibly(redis_conn, traveller, monkeypatch):
    from jobs.registry import registry

    monkeypatch.delitem(registry._types, "darkwatch.scan")  # as on a worker without the scanners app
    subscription = SubscriptionFactory(tier="basic")
    schedule = schedules_of(subscription)["darkwatch.scan"]
    traveller.move_to(schedule.next_run_at + timedelta(seconds=1))

    report = schedules_fire([schedule.pk])

    run = JobRun.objects.get(schedule=schedule)
    assert report.failed == 1 and run.status == "failed" and run.error_type == "UnknownJobType"
    assert "darkwatch.scan" in run.error
    schedule.refresh_from_db()
    assert schedule.next_run_at > timezone.now()


def test_an_entry_without_its_row_is_dropped(redis_conn, traveller):
    entries.entries_write({999_999: START - timedelta(minutes=1)})
    report = KordantScheduler(connection=redis_conn).fire_due()
    assert report.removed == 1
    assert redis_conn.zcard(entries.SCHEDULED_KEY) == 0


def test_stock_rq_scheduler_fires_the_same_entries_through_a_worker(redis_conn, traveller, ping_config, run_worker):
    schedule = ping_schedule(SubscriptionFactory(tier="plus"))
    traveller.move_to(schedule.next_run_at + timedelta(seconds=1))

    Scheduler(connection=redis_conn, job_class=JSONJob).enqueue_jobs()  # stock: enqueues FIRE
    run_worker("high")  # the worker runs jobs.scheduling.schedule_fire(pk)

    run = JobRun.objects.get(schedule=schedule)
    assert (run.trigger, run.status, run.planned_for) == ("cron", "queued", START + timedelta(hours=1))
    schedule.refresh_from_db()
    assert (
        entry_score(redis_conn, schedule)
        == schedule.next_run_at.timestamp()
        == (START + timedelta(hours=2)).timestamp()
    )


def test_a_burst_bigger_than_a_batch_fires_everything_once(redis_conn, traveller, ping_only):
    for _ in range(7):
        SubscriptionFactory(tier="plus")
    traveller.move_to(START + timedelta(hours=1, seconds=1))
    scheduler = KordantScheduler(connection=redis_conn)
    scheduler.fire_batch = 3

    report = scheduler.fire_due()

    assert report.queued == 7
    assert JobRun.objects.filter(trigger="cron").count() == 7


# --- repair ----------------------------------------------------------------------------


def test_sync_schedules_restores_every_entry_after_a_flush(redis_conn, traveller, capsys):
    for tier in ("basic", "plus", "premium", "premium"):
        SubscriptionFactory(tier=tier)
    expected = {s.entry_id: s.next_run_at.timestamp() for s in Schedule.objects.all()}
    redis_conn.flushdb()

    call_command("sync_schedules")
    assert "Repaired" in capsys.readouterr().out

    restored = dict(redis_conn.zrange(entries.SCHEDULED_KEY, 0, -1, withscores=True))
    assert {k.decode(): v for k, v in restored.items()} == expected
    assert schedules_sync_all().changed is False  # idempotent


def test_sync_schedules_catches_bulk_updates_that_bypass_signals(redis_conn, traveller):
    subscriptions = [SubscriptionFactory(tier="plus") for _ in range(3)]
    Subscription.objects.filter(pk__in=[s.pk for s in subscriptions]).update(tier="basic")  # no signals

    report = schedules_sync_all()

    assert (report.created, report.deleted) == (6, 9)
    assert set(Schedule.objects.values_list("config__tier", flat=True)) == {"basic"}
    assert redis_conn.zcard(entries.SCHEDULED_KEY) == 6


def test_pausing_a_schedule_removes_its_entry_and_resuming_restores_it(redis_conn, traveller):
    schedule = schedules_of(SubscriptionFactory(tier="basic"))["hometitle.scan"]
    schedule_set_enabled(schedule, False)
    assert entry_score(redis_conn, schedule) is None
    schedule_set_enabled(schedule, True)
    schedule.refresh_from_db()
    assert entry_score(redis_conn, schedule) == schedule.next_run_at.timestamp()
    assert schedules_sync_all().changed is False


# --- manual and on-change runs ---------------------------------------------------------


def test_manual_trigger_leaves_the_timing_alone(redis_conn, traveller, ping_config, run_worker):
    schedule = ping_schedule(SubscriptionFactory(tier="plus"))
    before = schedule.next_run_at

    run = schedule_trigger_now(schedule)
    run_worker()

    run.refresh_from_db()
    assert (run.trigger, run.status, run.schedule_id) == ("manual", "completed", schedule.pk)
    schedule.refresh_from_db()
    assert (schedule.next_run_at, schedule.run_count) == (before, 0)
    assert entry_score(redis_conn, schedule) == before.timestamp()


def test_run_now_for_a_whole_tier_fans_out(redis_conn, traveller, ping_config):
    subscriptions = [SubscriptionFactory(tier="plus") for _ in range(5)]
    SubscriptionFactory(tier="plus", status="cancelled")

    assert scheduler_config_trigger_now(ping_config) == 5

    runs = JobRun.objects.filter(trigger="manual", job_type="jobs.ping")
    assert sorted(runs.values_list("subscription_id", flat=True)) == sorted(s.pk for s in subscriptions)
    assert redis_conn.llen("rq:queue:default") == 5


def test_a_burst_of_edits_makes_one_real_time_run(traveller):
    premium = SubscriptionFactory(tier="premium")
    runs = {schedule_trigger_event(premium, "darkwatch.scan", f"item {n} added").pk for n in range(3)}
    assert len(runs) == 1
    run = JobRun.objects.get()
    assert (run.trigger, run.subscription_id) == ("event", premium.pk)
    assert run.scheduled_for == START + timedelta(seconds=5)
    assert schedule_trigger_event(SubscriptionFactory(tier="basic"), "darkwatch.scan", "edit") is None


# --- the scheduler's own clock ---------------------------------------------------------


def test_prune_fires_once_a_day_from_its_row(redis_conn, traveller, builtin_jobs):
    prune = builtin_jobs["jobs.prune"].schedule
    assert prune.next_run_at == datetime(2026, 6, 2, 3, 17, tzinfo=UTC)
    scheduler = KordantScheduler(connection=redis_conn)
    scheduler.keep_entries_whole()  # the start-up sync writes the built-ins' entries too
    traveller.move_to(datetime(2026, 6, 2, 3, 17, 1, tzinfo=UTC))
    scheduler.enqueue_jobs()
    scheduler.enqueue_jobs()
    run = JobRun.objects.get(job_type="jobs.prune")
    assert (run.trigger, run.schedule_id, run.planned_for) == ("cron", prune.pk, prune.next_run_at)
    prune.refresh_from_db()
    assert prune.next_run_at == datetime(2026, 6, 3, 3, 17, tzinfo=UTC)


def test_every_pass_writes_a_heartbeat(redis_conn, traveller):
    KordantScheduler(connection=redis_conn).enqueue_jobs()
    beat = redis_conn.hgetall(HEARTBEAT_KEY)
    assert float(beat[b"at"]) == START.timestamp() and b"last_pass_seconds" in beat
    assert redis_conn.ttl(HEARTBEAT_KEY) > 0


def test_sync_schedules_removes_entries_whose_row_is_gone(redis_conn, traveller):
    SubscriptionFactory(tier="basic")
    entries.entries_write({424_242: START + timedelta(hours=1)})  # e.g. a row deleted with raw SQL

    report = schedules_sync_all()

    assert report.entries_removed == 1
    assert entries.entry_pks() == set(Schedule.objects.values_list("pk", flat=True))


def test_deleting_a_config_removes_its_schedules_and_entries(redis_conn, traveller):
    subscriptions = [SubscriptionFactory(tier="plus") for _ in range(2)]
    SchedulerConfig.objects.get(tier="plus", job_type="reports.generate").delete()

    assert all(set(schedules_of(s)) == {"darkwatch.scan", "hometitle.scan"} for s in subscriptions)
    assert entries.entry_pks() == set(Schedule.objects.values_list("pk", flat=True))


def test_resyncing_one_tier_leaves_the_other_tiers_interleaved_with_it_alone(traveller):
    subscriptions = [SubscriptionFactory(tier=tier) for tier in ("plus", "basic", "plus", "basic")]
    before = set(Schedule.objects.values_list("pk", flat=True))

    report = schedules_sync_all() + schedules_sync_tier("plus")

    assert report.changed is False
    assert set(Schedule.objects.values_list("pk", flat=True)) == before
    assert len(schedules_of(subscriptions[1])) == 2


def test_a_save_while_redis_is_down_succeeds_and_sync_restores_the_entries(settings, redis_conn, traveller):
    good_queues = settings.RQ_QUEUES
    settings.RQ_QUEUES = {name: {**queue, "URL": "redis://127.0.0.1:1/0"} for name, queue in good_queues.items()}
    subscription = SubscriptionFactory(tier="premium")  # no exception: the rows are what matter
    assert len(schedules_of(subscription)) == 3

    settings.RQ_QUEUES = good_queues
    assert redis_conn.zcard(entries.SCHEDULED_KEY) == 0
    assert schedules_sync_all().entries_written == 3


def test_a_failing_step_does_not_end_the_scheduler_pass(redis_conn, traveller, ping_config, monkeypatch, caplog):
    schedule = ping_schedule(SubscriptionFactory(tier="plus"))
    traveller.move_to(schedule.next_run_at + timedelta(seconds=1))
    monkeypatch.setattr("jobs.scheduler.delayed_runs_push_due", lambda: 1 / 0)

    KordantScheduler(connection=redis_conn).enqueue_jobs()

    assert "moving delayed runs failed" in caplog.text
    assert JobRun.objects.filter(schedule=schedule).count() == 1  # firing still happened
    assert redis_conn.exists(HEARTBEAT_KEY)  # and so did the rest of the pass


# --- issue 15: a schedule whose next run cannot be computed stops nothing else ---------------


@pytest.fixture
def broken_basic_scan(ping_config, redis_conn, traveller):
    """A Basic and a Plus subscriber, then Basic's DarkWatch config set to a date that never
    occurs behind validation's back (a raw update, an old row, a bad import)."""
    basic, plus = SubscriptionFactory(tier="basic"), SubscriptionFactory(tier="plus")
    SchedulerConfig.objects.filter(tier="basic", job_type="darkwatch.scan").update(
        frequency="", cron_expression="0 0 30 2 *"
    )
    return basic, plus


def test_a_broken_config_never_stops_the_scheduler_start_up(broken_basic_scan, redis_conn, traveller, caplog):
    basic, plus = broken_basic_scan
    redis_conn.flushdb()  # the start-up sync must rebuild every entry

    KordantScheduler(connection=redis_conn).run(burst=True)  # raised CroniterBadDateError: rc 1

    broken = schedules_of(basic)["darkwatch.scan"]
    assert (broken.cron_expression, broken.next_run_at) == ("0 0 30 2 *", None)
    assert entry_score(redis_conn, broken) is None
    ping = ping_schedule(plus)
    assert entry_score(redis_conn, ping) == ping.next_run_at.timestamp() == (START + timedelta(hours=1)).timestamp()
    assert entry_score(redis_conn, schedules_of(basic)["hometitle.scan"]) is not None
    # The others fire on time.
    traveller.move_to(START + timedelta(hours=1, seconds=1))
    KordantScheduler(connection=redis_conn).fire_due()
    assert JobRun.objects.filter(schedule=ping, planned_for=START + timedelta(hours=1)).count() == 1
    # Logged once, however many syncs meet it.
    schedules_sync_all()
    said = [r for r in caplog.records if "0 0 30 2 *" in r.getMessage() and r.levelname == "ERROR"]
    assert len(said) == 1 and "skipped" in said[0].getMessage()


def test_saving_a_subscription_of_a_tier_with_a_broken_config_still_syncs_the_rest(broken_basic_scan, redis_conn):
    subscription = SubscriptionFactory(tier="basic")  # the sync after its commit raised

    schedules = schedules_of(subscription)
    assert schedules["darkwatch.scan"].next_run_at is None
    assert entry_score(redis_conn, schedules["hometitle.scan"]) == schedules["hometitle.scan"].next_run_at.timestamp()
    subscription.timezone = "Europe/Paris"
    subscription.save()  # and a change of an existing one
    assert schedules_of(subscription)["hometitle.scan"].timezone == "Europe/Paris"


def test_a_broken_due_schedule_is_stopped_and_the_others_fire(ping_only, redis_conn, traveller):
    good, bad = (ping_schedule(SubscriptionFactory(tier="plus")) for _ in range(2))
    Schedule.objects.filter(pk=bad.pk).update(cron_expression="0 0 31 4 *")  # behind validation's back
    traveller.move_to(START + timedelta(hours=1, seconds=1))

    report = KordantScheduler(connection=redis_conn).fire_due()

    assert (report.queued, report.broken) == (1, 1)
    assert JobRun.objects.get().schedule_id == good.pk
    bad.refresh_from_db()
    assert bad.next_run_at is None and entry_score(redis_conn, bad) is None
    good.refresh_from_db()
    assert entry_score(redis_conn, good) == (START + timedelta(hours=2)).timestamp()


def test_pausing_and_resuming_a_broken_schedule_is_allowed_and_stays_truthful(ping_only, redis_conn, traveller):
    schedule = ping_schedule(SubscriptionFactory(tier="plus"))
    Schedule.objects.filter(pk=schedule.pk).update(cron_expression="0 0 31 4 *")
    assert not schedule_set_enabled(schedule, False).enabled
    resumed = schedule_set_enabled(schedule, True)
    assert resumed.enabled and resumed.next_run_at is None
    assert resumed.state == "broken" and "never" in resumed.state_reason
    assert entry_score(redis_conn, resumed) is None


# --- issue 15: only job types that declare a scheduled payload run on a schedule -------------


def test_a_config_of_a_type_that_cannot_run_on_a_schedule_is_refused():
    with pytest.raises(ValidationError) as error:
        SchedulerConfig(tier="plus", job_type="notifications.send", frequency="daily").save()
    assert "cannot run on a schedule" in str(error.value.message_dict["job_type"])
    assert not SchedulerConfig.objects.filter(job_type="notifications.send").exists()


def test_a_tick_of_a_type_that_declares_no_scheduled_payload_fails_visibly(redis_conn, traveller):
    subscription = SubscriptionFactory(tier="basic")
    config = SchedulerConfig.objects.get(tier="basic", job_type="darkwatch.scan")
    SchedulerConfig.objects.filter(pk=config.pk).update(job_type="notifications.send")  # an old row
    schedule = schedules_of(subscription)["notifications.send"]
    traveller.move_to(schedule.next_run_at + timedelta(seconds=1))

    report = schedules_fire([schedule.pk])

    run = JobRun.objects.get(schedule=schedule)
    assert report.failed == 1 and (run.status, run.error_type) == ("failed", "NotSchedulable")
    assert "cannot run on a schedule" in run.error


def test_a_config_with_an_unknown_frequency_is_skipped_not_fatal(ping_config, redis_conn, traveller):
    subscription = SubscriptionFactory(tier="plus")
    SchedulerConfig.objects.filter(tier="plus", job_type="darkwatch.scan").update(frequency="fortnightly")

    schedules_sync_all()  # raised ValueError: unknown frequency

    schedules = schedules_of(subscription)
    assert schedules["darkwatch.scan"].next_run_at is None and schedules["darkwatch.scan"].state == "broken"
    assert entry_score(redis_conn, schedules["jobs.ping"]) == (START + timedelta(hours=1)).timestamp()
