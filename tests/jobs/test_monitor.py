"""jobs.monitor: thresholds from settings, staff told once per incident, paused queues left out."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from jobs import enqueue
from jobs.models import JobRun
from jobs.monitor import ALERTED_KEY, monitor_problems, monitor_run
from jobs.scheduling import scheduler_heartbeat_write
from jobs.services import queue_pause
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def healthy(settings, redis_conn):
    """Thresholds low enough to trip in a test, and a live scheduler."""
    settings.JOBS_MONITOR_QUEUE_DEPTH = 2
    settings.JOBS_MONITOR_OLDEST_QUEUED_SECONDS = 600
    settings.JOBS_MONITOR_FAILURE_RATE = 0.5
    settings.JOBS_MONITOR_FAILURE_MIN_RUNS = 2
    settings.JOBS_MONITOR_HEARTBEAT_SECONDS = 120
    settings.JOBS_MONITOR_COOLDOWN_SECONDS = 60
    scheduler_heartbeat_write("sched", last_pass_seconds=0.01, fired=0)
    return UserFactory(username="ops", is_staff=True, email="ops@example.com")


def checks():
    return {problem.check for problem in monitor_problems()}


def test_all_quiet_means_no_problem(healthy):
    assert checks() == set()
    assert monitor_run() == {"problems": [], "alerted": []}


def test_a_deep_queue_alerts_staff_once_per_incident(healthy, run_worker, redis_conn):
    for i in range(3):
        enqueue("jobs.ping", {"message": str(i)}, priority="low")
    assert checks() == {"queue_depth:low"}

    assert monitor_run()["alerted"] == ["queue_depth:low"]
    assert monitor_run()["alerted"] == []  # the same incident: quiet
    run_worker("critical", "high")  # send the notification
    assert len(mail.outbox) == 1
    assert "queue low holds 3 jobs (limit 2)" in mail.outbox[0].subject
    assert mail.outbox[0].to == ["ops@example.com"]

    key = ALERTED_KEY.format(check="queue_depth:low")
    assert 0 < redis_conn.ttl(key) <= 60  # the cooldown, renewed while the incident lasts
    redis_conn.delete(key)  # what Redis does once the cooldown passes with the check healthy
    assert monitor_run()["alerted"] == ["queue_depth:low"]  # a new incident alerts again


def test_a_paused_queue_backing_up_is_not_an_incident(healthy):
    queue_pause("low")
    for i in range(3):
        enqueue("jobs.ping", {"message": str(i)}, priority="low")
    assert checks() == set()


def test_a_run_waiting_too_long_is_an_incident(healthy):
    run = enqueue("jobs.ping", {"message": "stuck"})
    JobRun.objects.filter(pk=run.pk).update(enqueued_at=timezone.now() - timedelta(seconds=601))
    assert checks() == {"oldest_queued"}


def test_a_high_failure_rate_over_the_last_hour_is_an_incident(healthy, run_worker):
    enqueue("tests.permanent", {"message": "a"})
    run_worker("default")
    assert "failure_rate" not in checks()  # 1 of 1, under the minimum number of runs
    enqueue("tests.permanent", {"message": "b"})
    enqueue("jobs.ping", {"message": "c"})
    run_worker("default")
    assert "failure_rate" in checks()  # 2 of 3


def test_a_missing_or_stale_scheduler_heartbeat_is_an_incident(healthy, redis_conn):
    from jobs.scheduling import HEARTBEAT_KEY

    redis_conn.hset(HEARTBEAT_KEY, "at", 0)
    assert checks() == {"scheduler_heartbeat"}
    redis_conn.delete(HEARTBEAT_KEY)
    (problem,) = monitor_problems()
    assert problem.summary.startswith("no scheduler heartbeat")


def test_the_monitor_is_a_built_in_job_the_scheduler_runs_every_minute(healthy, run_worker, builtin_jobs):
    monitor = builtin_jobs["jobs.monitor"]
    assert (monitor.schedule.cron_expression, monitor.enabled, monitor.overlap) == ("* * * * *", True, "skip")
    for i in range(3):
        enqueue("jobs.ping", {"message": str(i)}, priority="low")
    run = enqueue("jobs.monitor", {})
    run_worker("critical")
    run.refresh_from_db()
    assert run.status == "completed" and run.result["alerted"] == ["queue_depth:low"]
