"""A real scheduler and a real worker ride out Redis going away, restarting empty and being
flushed: no process exits, and every schedule fires (and runs) again within a few passes,
with no restart and no operator action.

Each test here starts its own redis-server on a free port, never the session's shared one.
"""

import tempfile
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import entries, selectors
from jobs.models import JobRun, Schedule, SchedulerConfig
from jobs.scheduling import HEARTBEAT_KEY
from kordant.embedded_redis import EmbeddedRedis, free_port
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_redis(settings):
    """A redis-server of this test's own, which it may stop, restart and flush."""
    server = EmbeddedRedis(tempfile.mkdtemp(prefix="kordant-fault-redis-"), port=free_port(), persist=False).start()
    settings.REDIS_URL = server.url
    settings.RQ_QUEUES = {name: {**queue, "URL": server.url} for name, queue in settings.RQ_QUEUES.items()}
    yield server
    server.stop()


def wait_until(condition, what: str, processes=(), timeout=40.0) -> None:
    """Poll for what other processes do; they send no event this test could wait on."""
    deadline = time.monotonic() + timeout
    while not condition():
        exited = any(process.poll() is not None for process in processes)
        if exited or time.monotonic() > deadline:
            for process in processes:
                process.kill()
            logs = "\n".join(process.communicate()[0].decode()[-3000:] for process in processes)
            raise AssertionError(f"{'a process exited' if exited else 'timed out'} waiting for {what}:\n{logs}")
        time.sleep(0.2)


def fire_all_soon(schedules, seconds=2, *, entries_too=False):
    """Make every schedule due shortly: in the database, which Redis is rebuilt from, and
    (`entries_too`) in Redis as well, as a tick falling due would."""
    due = (timezone.now() + timedelta(seconds=seconds)).replace(microsecond=0)
    Schedule.objects.filter(pk__in=[s.pk for s in schedules]).update(next_run_at=due)
    if entries_too:
        entries.entries_write({s.pk: due for s in schedules})
    return due


def completed_ticks(schedules, planned) -> int:
    return JobRun.objects.filter(
        schedule__in=schedules, trigger="cron", planned_for=planned, status="completed"
    ).count()


@pytest.fixture
def running(own_redis, manage_process):
    """Five yearly schedules, a real `manage.py rqscheduler` and a real `manage.py rqworker`, both started."""
    # Yearly: the only ticks during a test are the ones it sets.
    SchedulerConfig.objects.create(tier="plus", job_type="jobs.ping", cron_expression="0 0 1 1 *")
    SchedulerConfig.objects.exclude(job_type="jobs.ping").update(enabled=False)
    schedules = [
        Schedule.objects.get(subscription=SubscriptionFactory(tier="plus"), config__job_type="jobs.ping")
        for _ in range(5)
    ]
    client = own_redis.client()
    processes = (manage_process("rqscheduler"), manage_process("rqworker", "critical", "high", "default", "low"))
    wait_until(lambda: client.exists(HEARTBEAT_KEY), "the scheduler's first pass", processes)
    wait_until(lambda: client.keys("rq:worker:*"), "the worker to register", processes)
    return schedules, processes, client


def logs_after_stopping(processes) -> dict[str, str]:
    for process in processes:
        process.terminate()
    outputs = [process.communicate(timeout=30)[0].decode() for process in processes]
    return dict(zip(("scheduler", "worker"), outputs, strict=True))


def test_scheduler_and_worker_ride_out_a_redis_outage_and_restart(own_redis, running):
    schedules, processes, _ = running
    # Redis goes away for longer than the 5 s that used to end both processes, and comes
    # back empty (no persistence): entries, queues, the worker's key, all gone.
    own_redis.stop()
    time.sleep(8)  # the outage itself: there is nothing to wait on but time
    assert all(process.poll() is None for process in processes), "a process exited during the outage"
    # Due soon in the database only: the entries must come back from there.
    planned = fire_all_soon(schedules, seconds=4)
    own_redis.start()
    wait_until(lambda: completed_ticks(schedules, planned) == len(schedules), "ticks after the restart", processes)
    # ...and the next ticks too, with no restart of anything.
    planned = fire_all_soon(schedules, seconds=2, entries_too=True)
    wait_until(lambda: completed_ticks(schedules, planned) == len(schedules), "the next ticks", processes)

    logs = logs_after_stopping(processes)
    # The outage is logged once per process (and its end), not once per pass.
    assert logs["scheduler"].count("Redis unavailable") == 1, logs["scheduler"]
    assert logs["worker"].count("Redis unavailable") == 1, logs["worker"]
    assert "Redis answers again" in logs["scheduler"] and "Redis answers again" in logs["worker"]


def test_a_flushall_is_noticed_rebuilt_and_shown_on_the_dashboard(own_redis, running):
    schedules, processes, client = running
    planned = fire_all_soon(schedules, seconds=3)
    client.flushall()
    wait_until(lambda: completed_ticks(schedules, planned) == len(schedules), "ticks after the flush", processes)
    wait_until(lambda: client.keys("rq:worker:*"), "the worker to register again", processes)

    # The rebuild is on the dashboard, and every enabled schedule has its entry again.
    rebuilt = selectors.jobs_dashboard()["entries_rebuilt"]
    assert rebuilt is not None and "Redis lost them" in rebuilt["reason"]
    assert entries.entry_pks() == {s.pk for s in schedules}
    logs = logs_after_stopping(processes)
    assert logs["scheduler"].count("schedule entries missing") == 1, logs["scheduler"]
