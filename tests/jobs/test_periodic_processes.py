"""Periodic jobs with real processes: a running `manage.py rqscheduler` follows what the
services write, with no restart. time-machine cannot reach a subprocess, so the minute
test waits for a real minute boundary (at most a minute)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import entries
from jobs.models import JobRun, Schedule
from jobs.periodic import (
    periodic_job_create,
    periodic_job_set_enabled,
    periodic_job_update,
    scheduling_pause,
    scheduling_resume,
)
from jobs.scheduling import HEARTBEAT_KEY
from tests.jobs.test_scheduler import wait_for_heartbeat, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
PING = {"message": "periodic"}
YEARLY = "0 0 1 1 *"  # the only tick due during a test is the one it sets


def make_due(schedules, seconds=1.0):
    """Make these schedules due in `seconds`, as their entries say (what the scheduler reads)."""
    due = timezone.now() + timedelta(seconds=seconds)
    Schedule.objects.filter(pk__in=[s.pk for s in schedules]).update(next_run_at=due)
    entries.entries_write({s.pk: due for s in schedules})
    return due


def passes_after(redis_conn, seconds: float) -> None:
    """Wait until the scheduler has made passes for `seconds` more."""
    after = time.time() + seconds
    wait_until(lambda: float(redis_conn.hget(HEARTBEAT_KEY, "at") or 0) > after, "later passes")


def test_a_running_scheduler_follows_new_and_edited_periodic_jobs_with_no_restart(
    manage_process, redis_conn, builtin_jobs
):
    process = manage_process("rqscheduler")
    wait_for_heartbeat(redis_conn, process)
    # Leave at least 3 s before the minute, so every edit is committed before it.
    while timezone.now().second >= 57:
        time.sleep(0.2)
    edited_at = timezone.now()
    minute = edited_at.replace(second=0, microsecond=0) + timedelta(minutes=1)

    new = periodic_job_create(name="every minute", job_type="jobs.ping", payload=PING, cron_expression="* * * * *")
    periodic_job_set_enabled(builtin_jobs["jobs.monitor"], False)
    periodic_job_update(builtin_jobs["voiceprint.batch"], cron_expression="* * * * *")

    fired = {"every minute": new.schedule.pk}
    fired |= {name: builtin_jobs[name].schedule.pk for name in ("removebrokers.process", "voiceprint.batch")}
    ticks = JobRun.objects.filter(trigger="cron", planned_for=minute)
    wait_until(lambda: ticks.count() >= len(fired), "the minute's ticks", timeout=75)
    passes_after(redis_conn, 2)

    runs = {run.schedule_id: run for run in ticks}
    # (notifications.reconcile fires too when the minute is a multiple of ten)
    assert set(fired.values()) <= set(runs)
    assert builtin_jobs["jobs.monitor"].schedule.pk not in runs  # disabled
    for name, schedule_id in fired.items():
        late = runs[schedule_id].created_at - minute
        assert late < timedelta(seconds=2), f"{name} fired {late} after its minute"
    # None planned after it was disabled (the scheduler may fire its tick of a minute that
    # began while the test waited for room before the next one).
    assert not JobRun.objects.filter(job_type="jobs.monitor", planned_for__gt=edited_at).exists()


def test_two_scheduler_processes_fire_each_periodic_tick_once(manage_process, redis_conn):
    jobs = [
        periodic_job_create(name=f"p{n}", job_type="jobs.ping", payload=PING, cron_expression=YEARLY) for n in range(20)
    ]
    processes = [manage_process("rqscheduler"), manage_process("rqscheduler")]
    for process in processes:
        wait_for_heartbeat(redis_conn, process)
    wait_until(lambda: len(redis_conn.keys("rq:scheduler_instance:*")) == 2, "both schedulers registered")

    schedules = [job.schedule for job in jobs]
    due = make_due(schedules)
    wait_until(lambda: JobRun.objects.filter(trigger="cron").count() >= 20, "20 ticks")
    passes_after(redis_conn, 3)

    runs = JobRun.objects.filter(trigger="cron")
    assert runs.count() == 20
    assert set(runs.values_list("schedule_id", "planned_for")) == {(s.pk, due) for s in schedules}
    assert redis_conn.llen("rq:queue:default") == 20  # each pushed once


def test_pause_stops_a_running_scheduler_and_resume_catches_up_per_policy(manage_process, redis_conn, monkeypatch):
    monkeypatch.setenv("JOBS_CATCH_UP_GRACE_SECONDS", "1")  # for the scheduler process
    one = periodic_job_create(name="one", job_type="jobs.ping", payload=PING, cron_expression=YEARLY)
    none = periodic_job_create(name="none", job_type="jobs.ping", payload=PING, cron_expression=YEARLY, catch_up="none")
    process = manage_process("rqscheduler")
    wait_for_heartbeat(redis_conn, process)

    scheduling_pause(reason="maintenance")
    due = make_due([one.schedule, none.schedule])
    wait_until(lambda: redis_conn.hget(HEARTBEAT_KEY, "paused") == b"1", "the scheduler sees the pause")
    passes_after(redis_conn, 3)  # due for 2 s and more: missed by more than the grace
    assert not JobRun.objects.exists()
    assert entries.entries_state([one.schedule.pk])[one.schedule.pk] == pytest.approx(due.timestamp())

    scheduling_resume()
    wait_until(lambda: JobRun.objects.count() == 2, "the catch-up")
    runs = {run.schedule_id: run for run in JobRun.objects.all()}
    assert (runs[one.schedule.pk].status, runs[one.schedule.pk].planned_for) == ("queued", due)
    assert (runs[none.schedule.pk].status, runs[none.schedule.pk].planned_for) == ("skipped", due)
    assert "catch-up policy" in runs[none.schedule.pk].error
    # The heartbeat closes the pass, after the steps that follow firing: the runs can be seen first.
    wait_until(lambda: redis_conn.hget(HEARTBEAT_KEY, "paused") == b"0", "the heartbeat of the resumed pass")
