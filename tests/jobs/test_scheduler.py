"""Plain `manage.py rqscheduler`, as a real process, runs KordantScheduler on time."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import entries
from jobs.models import JobRun, Schedule, SchedulerConfig
from jobs.scheduling import HEARTBEAT_KEY
from tests.factories import SubscriptionFactory

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


def test_plain_rqscheduler_fires_a_due_schedule_within_two_seconds(manage_process, redis_conn):
    # Yearly, so the only tick due during the test is the one it sets.
    SchedulerConfig.objects.create(tier="plus", job_type="jobs.ping", cron_expression="0 0 1 1 *")
    schedule = Schedule.objects.get(subscription=SubscriptionFactory(tier="plus"), config__job_type="jobs.ping")
    process = manage_process("rqscheduler")
    wait_for_heartbeat(redis_conn, process)

    due = timezone.now() + timedelta(seconds=1)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=due)
    entries.entries_write({schedule.pk: due})
    popped = redis_conn.blpop(["rq:queue:default"], timeout=20)

    assert popped is not None, "the scheduler did not fire the schedule"
    run = JobRun.objects.get(pk=popped[1].decode())
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
    popped = [redis_conn.blpop(["rq:queue:default"], timeout=20) for _ in schedules]
    assert all(popped), "not every schedule fired"
    # Let both schedulers make further passes over the same (now moved) entries.
    passes_after = time.time() + 3
    wait_until(lambda: float(redis_conn.hget(HEARTBEAT_KEY, "at")) > passes_after, "later passes")

    runs = JobRun.objects.filter(trigger="cron")
    assert runs.count() == 20
    assert set(runs.values_list("schedule_id", flat=True)) == {s.pk for s in schedules}
    assert redis_conn.llen("rq:queue:default") == 0
