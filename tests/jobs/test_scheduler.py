"""Plain `manage.py rqscheduler`, as a real process, runs KordantScheduler on time."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import entries
from jobs.models import JobRun, Schedule, SchedulerConfig
from jobs.scheduling import HEARTBEAT_KEY
from tests.factories import SubscriptionFactory
from tests.jobs.handlers import blpop_within

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(condition, what: str, timeout=30.0) -> None:
    """Wait for something real processes do; they send no event this test could wait on."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_for_heartbeat(redis_conn, process, timeout=30.0):
    """Wait until the scheduler process has finished its start-up sync and a first pass."""
    deadline = time.monotonic() + timeout
    while not redis_conn.exists(HEARTBEAT_KEY):
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "the scheduler wrote no heartbeat"
        time.sleep(0.05)


def pop_tick_runs(redis_conn, count: int, timeout=20.0) -> list[JobRun]:
    """Pop the default queue until `count` tier schedule ticks came off it. The built-in
    periodic jobs (removebrokers.process each minute, say) may come between and are set aside."""
    deadline = time.monotonic() + timeout
    ticks = []
    while len(ticks) < count:
        popped = blpop_within(redis_conn, "rq:queue:default", deadline - time.monotonic())
        assert popped is not None, f"only {len(ticks)} of {count} ticks fired"
        run = JobRun.objects.get(pk=popped[1].decode())
        if run.trigger == JobRun.Trigger.CRON and not run.schedule.is_periodic:
            ticks.append(run)
    return ticks


def test_plain_rqscheduler_fires_a_due_schedule_within_two_seconds(manage_process, redis_conn):
    # Yearly, so the only tick due during the test is the one it sets.
    SchedulerConfig.objects.create(tier="plus", job_type="jobs.ping", cron_expression="0 0 1 1 *")
    schedule = Schedule.objects.get(subscription=SubscriptionFactory(tier="plus"), config__job_type="jobs.ping")
    process = manage_process("rqscheduler")
    wait_for_heartbeat(redis_conn, process)

    due = timezone.now() + timedelta(seconds=1)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=due)
    entries.entries_write({schedule.pk: due})
    [run] = pop_tick_runs(redis_conn, 1)

    assert (run.trigger, run.schedule_id, run.planned_for) == ("cron", schedule.pk, due)
    assert run.created_at - due < timedelta(seconds=2)


def test_two_scheduler_processes_fire_each_tick_once(manage_process, redis_conn):
    SchedulerConfig.objects.create(tier="plus", job_type="jobs.ping", cron_expression="0 0 1 1 *")
    schedules = [
        Schedule.objects.get(subscription=SubscriptionFactory(tier="plus"), config__job_type="jobs.ping")
        for _ in range(20)
    ]
    processes = [manage_process("rqscheduler"), manage_process("rqscheduler")]
    for process in processes:
        wait_for_heartbeat(redis_conn, process)
    wait_until(lambda: len(redis_conn.keys("rq:scheduler_instance:*")) == 2, "both schedulers registered")

    due = timezone.now() + timedelta(seconds=1)
    Schedule.objects.filter(pk__in=[s.pk for s in schedules]).update(next_run_at=due)
    entries.entries_write({s.pk: due for s in schedules})
    pop_tick_runs(redis_conn, len(schedules))
    # Let both schedulers make further passes over the same (now moved) entries.
    passes_after = time.time() + 3
    wait_until(lambda: float(redis_conn.hget(HEARTBEAT_KEY, "at")) > passes_after, "later passes")

    runs = JobRun.objects.filter(trigger="cron", schedule__periodic_job__isnull=True)
    assert runs.count() == 20
    assert set(runs.values_list("schedule_id", flat=True)) == {s.pk for s in schedules}
    # No tick was pushed twice: whatever is left on the queue is the built-in periodic jobs'.
    left = [run_id.decode() for run_id in redis_conn.lrange("rq:queue:default", 0, -1)]
    assert not runs.filter(pk__in=left).exists()
