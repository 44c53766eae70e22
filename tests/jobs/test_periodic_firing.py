"""Periodic jobs fire through the same pass as tier schedules, under the same rules.

The firing rules (one run per tick, overlap, catch-up, DST) are one table of cases, run
for both kinds of schedule: a tier schedule (a subscription's run of its tier's config)
and a periodic job's. Then what only periodic jobs have (stored payload, own queue and
retry policy, owner), the scheduling switch, and repair.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import transaction
from rq_scheduler import Scheduler

from jobs import entries
from jobs.models import JobRun, PeriodicJob, Schedule, SchedulerConfig
from jobs.periodic import (
    periodic_job_create,
    periodic_job_delete,
    periodic_job_set_enabled,
    periodic_jobs_create_many,
    scheduling_pause,
    scheduling_resume,
)
from jobs.scheduler import KordantScheduler
from jobs.scheduling import HEARTBEAT_KEY, schedule_trigger_now, schedules_fire, schedules_sync_all
from jobs.selectors import scheduler_heartbeat
from jobs.worker import JSONJob
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KINDS = ("tier", "periodic")
PING = {"message": "x"}


@pytest.fixture(autouse=True)
def no_builtins():
    """Only the schedules a test makes (the first transactional test still sees the migrations' rows)."""
    PeriodicJob.objects.filter(builtin=True).delete()
    SchedulerConfig.objects.all().delete()


def make_schedule(kind: str, cron: str, *, tz: str = "UTC", overlap="skip", catch_up="one") -> Schedule:
    """A schedule of either kind running jobs.ping on `cron` in `tz`, with these policies."""
    if kind == "tier":
        SchedulerConfig.objects.create(
            tier="plus", job_type="jobs.ping", cron_expression=cron, overlap=overlap, catch_up=catch_up
        )
        return Schedule.objects.get(subscription=SubscriptionFactory(tier="plus", timezone=tz))
    job = periodic_job_create(
        name=f"ping {cron}",
        job_type="jobs.ping",
        payload={"message": "periodic ping"},
        cron_expression=cron,
        timezone=tz,
        overlap=overlap,
        catch_up=catch_up,
    )
    return Schedule.objects.get(periodic_job=job)


def entry_score(redis_conn, schedule):
    return redis_conn.zscore(entries.SCHEDULED_KEY, schedule.entry_id)


def runs_of(schedule):
    return list(JobRun.objects.filter(schedule=schedule).order_by("planned_for", "created_at"))


# --- one table of firing cases, both kinds ------------------------------------------------


def _due_tick_fires_once(redis_conn, traveller, kind):
    schedule = make_schedule(kind, "0 * * * *")
    assert schedule.next_run_at == START + timedelta(hours=1)
    traveller.move_to(START + timedelta(hours=1, seconds=1))
    assert KordantScheduler(connection=redis_conn).fire_due().queued == 1
    [run] = runs_of(schedule)
    assert (run.trigger, run.status, run.planned_for) == ("cron", "queued", START + timedelta(hours=1))
    schedule.refresh_from_db()
    assert (schedule.run_count, schedule.last_run_id, schedule.next_run_at) == (1, run.pk, START + timedelta(hours=2))
    assert entry_score(redis_conn, schedule) == schedule.next_run_at.timestamp()
    # A second scheduler that read the row before the first moved it fires the same tick.
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=START + timedelta(hours=1))
    assert schedules_fire([schedule.pk]).duplicate == 1
    assert len(runs_of(schedule)) == 1 and redis_conn.llen("rq:queue:default") == 1


def _overlap_skip(redis_conn, traveller, kind):
    schedule = make_schedule(kind, "0 * * * *")
    scheduler = KordantScheduler(connection=redis_conn)
    for hour in (1, 2):
        traveller.move_to(START + timedelta(hours=hour, seconds=1))
        scheduler.fire_due()  # no worker runs the first
    assert [r.status for r in runs_of(schedule)] == ["queued", "skipped"]
    assert "still active" in runs_of(schedule)[1].events.get().message


def _overlap_allow(redis_conn, traveller, kind):
    schedule = make_schedule(kind, "0 * * * *", overlap="allow")
    scheduler = KordantScheduler(connection=redis_conn)
    for hour in (1, 2):
        traveller.move_to(START + timedelta(hours=hour, seconds=1))
        scheduler.fire_due()
    assert [r.status for r in runs_of(schedule)] == ["queued", "queued"]


def _catch_up_one(redis_conn, traveller, kind):
    schedule = make_schedule(kind, "0 * * * *")
    traveller.move_to(START + timedelta(hours=3, minutes=30))  # 13:00, 14:00 and 15:00 missed
    KordantScheduler(connection=redis_conn).fire_due()
    [run] = runs_of(schedule)
    assert (run.status, run.planned_for) == ("queued", START + timedelta(hours=3))
    schedule.refresh_from_db()
    assert schedule.next_run_at == START + timedelta(hours=4)


def _catch_up_none(redis_conn, traveller, kind):
    schedule = make_schedule(kind, "0 * * * *", catch_up="none")
    traveller.move_to(START + timedelta(hours=3, minutes=30))
    KordantScheduler(connection=redis_conn).fire_due()
    [run] = runs_of(schedule)
    # Visible, and the tick's slot is taken: no second scheduler can run it either.
    assert (run.status, run.planned_for) == ("skipped", START + timedelta(hours=3))
    assert "missed by 1800 s" in run.error and "catch-up policy" in run.events.get().message
    schedule.refresh_from_db()
    assert (schedule.run_count, schedule.next_run_at) == (0, START + timedelta(hours=4))
    assert redis_conn.llen("rq:queue:default") == 0
    # Within the grace (JOBS_CATCH_UP_GRACE_SECONDS), a late pass still runs the tick.
    traveller.move_to(START + timedelta(hours=4, seconds=30))
    KordantScheduler(connection=redis_conn).fire_due()
    assert [r.status for r in runs_of(schedule)] == ["skipped", "queued"]


def _dst_spring_forward(redis_conn, traveller, kind):
    # 2026-03-08 02:30 does not exist in New York: that day's run is at 03:00 EDT, once.
    traveller.move_to(datetime(2026, 3, 7, 12, 0, tzinfo=UTC))
    schedule = make_schedule(kind, "30 2 * * *", tz="America/New_York")
    assert schedule.next_run_at == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    traveller.move_to(datetime(2026, 3, 8, 7, 0, 1, tzinfo=UTC))
    KordantScheduler(connection=redis_conn).fire_due()
    assert [r.planned_for for r in runs_of(schedule)] == [datetime(2026, 3, 8, 7, 0, tzinfo=UTC)]
    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)


def _dst_fall_back(redis_conn, traveller, kind):
    # 2026-11-01 01:30 happens twice in New York: it runs once, at the first.
    traveller.move_to(datetime(2026, 10, 31, 12, 0, tzinfo=UTC))
    schedule = make_schedule(kind, "30 1 * * *", tz="America/New_York")
    assert schedule.next_run_at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    scheduler = KordantScheduler(connection=redis_conn)
    for at in (datetime(2026, 11, 1, 5, 30, 1, tzinfo=UTC), datetime(2026, 11, 1, 6, 30, 1, tzinfo=UTC)):
        traveller.move_to(at)
        scheduler.fire_due()
    assert [r.planned_for for r in runs_of(schedule)] == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]
    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


FIRING_CASES = {
    "a due tick fires once": _due_tick_fires_once,
    "overlap skip": _overlap_skip,
    "overlap allow": _overlap_allow,
    "catch-up one": _catch_up_one,
    "catch-up none": _catch_up_none,
    "DST spring forward": _dst_spring_forward,
    "DST fall back": _dst_fall_back,
}


@pytest.fixture
def traveller():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", FIRING_CASES)
def test_both_kinds_fire_under_the_same_rules(case, kind, redis_conn, traveller):
    FIRING_CASES[case](redis_conn, traveller, kind)


# --- what a periodic job's run carries ------------------------------------------------------


def test_a_periodic_run_carries_the_jobs_payload_queue_retry_policy_and_owner(redis_conn, traveller, run_worker):
    owner = UserFactory()
    job = periodic_job_create(
        name="mine",
        job_type="jobs.ping",
        payload={"message": "stored payload"},
        cron_expression="0 * * * *",
        priority="high",
        max_attempts=5,
        retry_delays=[7, 11],
        owner=owner,
    )
    traveller.move_to(START + timedelta(hours=1, seconds=1))
    KordantScheduler(connection=redis_conn).fire_due()

    run = JobRun.objects.get(schedule__periodic_job=job)
    assert (run.queue, run.max_attempts, run.retry_delays, run.user_id) == ("high", 5, [7, 11], owner.pk)
    assert run.subscription_id is None and run.trigger == "cron"
    run_worker("high")
    run.refresh_from_db()
    assert (run.status, run.result) == ("completed", {"message": "stored payload"})


def test_a_periodic_run_without_its_own_policy_takes_the_job_types(redis_conn, traveller):
    from jobs.registry import registry

    job = periodic_job_create(name="p", job_type="jobs.ping", payload={"message": "x"}, cron_expression="0 * * * *")
    traveller.move_to(START + timedelta(hours=1, seconds=1))
    KordantScheduler(connection=redis_conn).fire_due()
    run = JobRun.objects.get(schedule__periodic_job=job)
    ping = registry.get("jobs.ping")
    assert (run.queue, run.max_attempts, run.retry_delays, run.user_id) == (ping.queue, ping.max_attempts, None, None)


def test_a_stored_payload_the_schema_now_refuses_is_a_visible_failed_tick(redis_conn, traveller):
    job = periodic_job_create(name="p", job_type="jobs.ping", payload={"message": "x"}, cron_expression="0 * * * *")
    PeriodicJob.objects.filter(pk=job.pk).update(payload={"unexpected": 1})  # behind validation's back
    traveller.move_to(START + timedelta(hours=1, seconds=1))

    report = KordantScheduler(connection=redis_conn).fire_due()

    run = JobRun.objects.get(schedule__periodic_job=job)
    assert (report.failed, run.status, run.error_type) == (1, "failed", "PayloadInvalid")
    assert "could not run" in run.events.get().message
    assert redis_conn.llen("rq:queue:default") == 0


def test_tier_and_periodic_schedules_fire_in_one_pass(redis_conn, traveller):
    tier = make_schedule("tier", "0 * * * *")
    periodic = make_schedule("periodic", "0 * * * *")
    traveller.move_to(START + timedelta(hours=1, seconds=1))
    report = KordantScheduler(connection=redis_conn).fire_due()
    assert report.queued == 2
    assert {run.schedule_id for run in JobRun.objects.all()} == {tier.pk, periodic.pk}


def test_run_now_on_a_periodic_schedule_is_a_manual_run_of_the_job(redis_conn, traveller):
    schedule = make_schedule("periodic", "0 4 * * *")
    run = schedule_trigger_now(schedule)
    assert (run.trigger, run.payload, run.schedule_id) == ("manual", {"message": "periodic ping"}, schedule.pk)
    assert Schedule.objects.get(pk=schedule.pk).next_run_at == schedule.next_run_at


def test_the_stock_rq_scheduler_path_fires_a_periodic_job_through_a_worker(redis_conn, traveller, run_worker):
    schedule = make_schedule("periodic", "0 * * * *")
    traveller.move_to(START + timedelta(hours=1, seconds=1))
    Scheduler(connection=redis_conn, job_class=JSONJob).enqueue_jobs()  # stock: enqueues schedule_fire
    run_worker("high")
    [run] = runs_of(schedule)
    assert (run.status, run.payload) == ("queued", {"message": "periodic ping"})
    assert entry_score(redis_conn, schedule) == (START + timedelta(hours=2)).timestamp()


# --- the scheduling switch ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("catch_up", "after_resume"),
    [("one", ["queued"]), ("none", ["skipped"])],
)
def test_pause_fires_nothing_and_resume_follows_each_catch_up_policy(
    catch_up, after_resume, redis_conn, traveller, run_worker
):
    schedules = [make_schedule(kind, "0 * * * *", catch_up=catch_up) for kind in KINDS]
    scheduler = KordantScheduler(connection=redis_conn)
    scheduling_pause(reason="database upgrade")
    for hour in (1, 2, 3):
        traveller.move_to(START + timedelta(hours=hour, seconds=1))
        scheduler.enqueue_jobs()
    assert not JobRun.objects.exists()
    assert scheduler_heartbeat(connection=redis_conn)["paused"] is True
    # Entries stay where they were: nothing is lost, nothing moved.
    assert all(entry_score(redis_conn, s) == (START + timedelta(hours=1)).timestamp() for s in schedules)
    # Manual runs still work while paused.
    manual = schedule_trigger_now(schedules[1])
    run_worker()
    manual.refresh_from_db()
    assert manual.status == "completed"

    traveller.move_to(START + timedelta(hours=3, minutes=20))
    scheduling_resume()
    scheduler.enqueue_jobs()

    assert scheduler_heartbeat(connection=redis_conn)["paused"] is False
    for schedule in schedules:
        ticks = [r for r in runs_of(schedule) if r.trigger == "cron"]
        assert [r.status for r in ticks] == after_resume
        assert ticks[0].planned_for == START + timedelta(hours=3)
        schedule.refresh_from_db()
        assert schedule.next_run_at == START + timedelta(hours=4)


def test_the_stock_path_fires_nothing_while_paused_and_keeps_the_entry(redis_conn, traveller, run_worker):
    schedule = make_schedule("periodic", "0 * * * *")
    scheduling_pause()
    traveller.move_to(START + timedelta(hours=1, seconds=1))
    Scheduler(connection=redis_conn, job_class=JSONJob).enqueue_jobs()
    run_worker("high")
    assert not runs_of(schedule)
    assert entry_score(redis_conn, schedule) is not None


def test_the_heartbeat_says_running_when_not_paused(redis_conn, traveller):
    KordantScheduler(connection=redis_conn).enqueue_jobs()
    assert redis_conn.hget(HEARTBEAT_KEY, "paused") == b"0"


# --- entries follow rows after commit, and are rebuilt -------------------------------------


def test_a_rolled_back_create_leaves_no_row_and_no_entry(redis_conn):
    with pytest.raises(RuntimeError), transaction.atomic():
        periodic_job_create(name="p", job_type="jobs.ping", payload={"message": "x"}, cron_expression="* * * * *")
        assert redis_conn.zcard(entries.SCHEDULED_KEY) == 0  # not before commit
        raise RuntimeError("the caller's transaction fails")
    assert not PeriodicJob.objects.exists()
    assert redis_conn.zcard(entries.SCHEDULED_KEY) == 0


def test_deleting_a_periodic_job_removes_its_entry_after_commit(redis_conn):
    schedule = make_schedule("periodic", "* * * * *")
    with transaction.atomic():
        periodic_job_delete(schedule.periodic_job)
        assert entry_score(redis_conn, schedule) is not None
    assert entry_score(redis_conn, schedule) is None


def test_sync_rebuilds_periodic_entries_after_a_flush_and_removes_strays(redis_conn, traveller):
    on = make_schedule("periodic", "0 * * * *")
    off = make_schedule("periodic", "*/5 * * * *")
    periodic_job_set_enabled(off.periodic_job, False)
    tier = make_schedule("tier", "0 * * * *")
    redis_conn.flushdb()
    entries.entries_write({999_999: START})  # an entry whose row is gone

    report = schedules_sync_all()

    assert report.entries_removed == 1
    assert entry_score(redis_conn, on) == (START + timedelta(hours=1)).timestamp()
    assert entry_score(redis_conn, tier) is not None and entry_score(redis_conn, off) is None
    assert schedules_sync_all().changed is False  # idempotent


def test_sync_repairs_periodic_rows_written_behind_the_services_back(redis_conn, traveller):
    schedule = make_schedule("periodic", "0 * * * *")
    PeriodicJob.objects.filter(pk=schedule.periodic_job_id).update(cron_expression="30 * * * *")
    orphan = PeriodicJob.objects.create(name="no row", job_type="jobs.ping", payload=PING, frequency="daily")

    report = schedules_sync_all()

    schedule.refresh_from_db()
    assert (schedule.cron_expression, schedule.next_run_at) == ("30 * * * *", START + timedelta(minutes=30))
    made = Schedule.objects.get(periodic_job=orphan)
    assert made.cron_expression == orphan.timing_cron and entry_score(redis_conn, made) is not None
    assert (report.created, report.updated) == (1, 1)


# --- many at once ----------------------------------------------------------------------------


def test_creating_many_validates_each_row_and_saves_nothing_if_one_is_bad(redis_conn):
    PeriodicJob.objects.create(name="taken", job_type="jobs.ping", payload=PING, cron_expression="0 * * * *")
    good = {"job_type": "jobs.ping", "payload": {"message": "x"}, "cron_expression": "0 * * * *"}
    batch = [
        {**good, "name": "a"},
        {**good, "name": "b", "payload": {"wrong": 1}},
        {**good, "name": "a"},
        {**good, "name": "taken"},
        {**good, "name": "c", "timezone": "Mars/Olympus"},
    ]
    with pytest.raises(ValidationError) as caught:
        periodic_jobs_create_many(batch)
    errors = caught.value.message_dict
    assert set(errors) == {"jobs[1]", "jobs[2]", "jobs[3]", "jobs[4]"}
    assert "payload" in errors["jobs[1]"][0] and "twice" in errors["jobs[2]"][0]
    assert "exists already" in errors["jobs[3]"][0] and "timezone" in errors["jobs[4]"][0]
    assert PeriodicJob.objects.count() == 1 and redis_conn.zcard(entries.SCHEDULED_KEY) == 0


def test_creating_many_makes_rows_schedules_and_entries_after_commit(redis_conn, traveller):
    batch = [
        {"name": f"job {n}", "job_type": "jobs.ping", "payload": {"message": str(n)}, "frequency": "hourly"}
        for n in range(25)
    ]
    with transaction.atomic():
        ids = periodic_jobs_create_many(batch)
        assert redis_conn.zcard(entries.SCHEDULED_KEY) == 0
    schedules = Schedule.objects.filter(periodic_job__in=ids).select_related("periodic_job")
    assert len(schedules) == 25
    assert all(s.cron_expression == s.periodic_job.timing_cron for s in schedules)
    assert {s.entry_id: s.next_run_at.timestamp() for s in schedules} == {
        k.decode(): v for k, v in redis_conn.zrange(entries.SCHEDULED_KEY, 0, -1, withscores=True)
    }


def test_creating_many_keeps_owners_and_takes_an_empty_batch(redis_conn):
    owner = UserFactory()
    assert periodic_jobs_create_many([]) == []
    [pk] = periodic_jobs_create_many(
        [{"name": "mine", "job_type": "jobs.ping", "payload": PING, "cron_expression": "0 9 * * 1", "owner": owner}]
    )
    job = PeriodicJob.objects.get(pk=pk)
    assert (job.owner_id, job.payload, job.timezone, job.enabled) == (owner.pk, PING, "UTC", True)
    # Another owner may use the same name; the same owner may not.
    periodic_jobs_create_many([{"name": "mine", "job_type": "jobs.ping", "payload": PING, "frequency": "daily"}])
    with pytest.raises(ValidationError, match="exists already"):
        periodic_jobs_create_many(
            [{"name": "mine", "job_type": "jobs.ping", "payload": PING, "frequency": "daily", "owner_id": owner.pk}]
        )
    with pytest.raises(TypeError):
        periodic_jobs_create_many([{"name": "x", "no_such_field": 1}])
