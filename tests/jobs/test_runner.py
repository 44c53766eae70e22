"""The runner's outcomes: retries on the declared schedule, permanent errors, timeouts,
singletons, and handlers that stop when cancelled."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from jobs import enqueue
from jobs.dispatch import DELAYED_KEY
from jobs.models import JobRun
from jobs.runner import execute
from jobs.services import delayed_runs_push_due, job_run_cancel, job_run_mark_running
from tests.jobs.handlers import blpop_within, release_key, started_key

pytestmark = pytest.mark.django_db(transaction=True)


def test_retries_after_exactly_60_300_900_seconds_then_fails(run_worker, redis_conn):
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False) as clock:
        run = enqueue("tests.fail", {"message": "provider down"})
        expected_delays = [60, 300, 900]
        for attempt, delay in enumerate(expected_delays, start=1):
            run_worker()
            run.refresh_from_db()
            assert (run.status, run.attempt) == ("retrying", attempt)
            assert run.next_attempt_at == timezone.now() + timedelta(seconds=delay)
            assert redis_conn.zscore(DELAYED_KEY, str(run.pk)) == run.next_attempt_at.timestamp()

            clock.shift(timedelta(seconds=delay - 1))
            assert delayed_runs_push_due() == 0, "pushed before its time"
            clock.shift(timedelta(seconds=1))
            assert delayed_runs_push_due() == 1

        run_worker()
    run.refresh_from_db()
    assert (run.status, run.attempt) == ("failed", 4)
    assert run.error == "provider down" and run.error_type == "RuntimeError"
    assert "RuntimeError: provider down" in run.traceback
    statuses = list(run.events.values_list("status", flat=True))
    assert statuses.count("running") == 4 and statuses.count("retrying") == 3 and statuses[-1] == "failed"


def test_retry_after_from_the_provider_wins_when_longer(run_worker):
    with time_machine.travel(timezone.now(), tick=False):
        run = enqueue("tests.fail", {"message": "429", "retry_after": 600})
        run_worker()
        run.refresh_from_db()
        assert run.next_attempt_at == timezone.now() + timedelta(seconds=600)


def test_permanent_error_fails_at_once(run_worker):
    run = enqueue("tests.permanent", {"message": "API key rejected"})
    run_worker()
    run.refresh_from_db()
    assert (run.status, run.attempt, run.error_type) == ("failed", 1, "PermanentJobError")
    assert run.error == "API key rejected"


def test_timeout_counts_as_a_failed_attempt(run_worker):
    run = enqueue("tests.slow", {"name": "slow", "seconds": 5})  # declared timeout: 1 s
    run_worker()
    run.refresh_from_db()
    assert (run.status, run.attempt, run.error_type) == ("retrying", 1, "JobTimeout")
    assert run.error == "timed out after 1 s"


def test_payload_that_no_longer_validates_fails_permanently(run_worker):
    run = enqueue("jobs.ping", {"message": "ok"})
    JobRun.objects.filter(pk=run.pk).update(payload={"message": 42})
    run_worker()
    run.refresh_from_db()
    assert (run.status, run.error_type) == ("failed", "PayloadInvalid")


def test_a_run_is_started_once_even_if_delivered_twice(run_worker):
    run = enqueue("jobs.ping", {"message": "once"})
    run_worker()
    execute(str(run.pk))  # a duplicate delivery of the same RQ job
    run.refresh_from_db()
    assert run.attempt == 1
    assert list(run.events.values_list("status", flat=True)).count("running") == 1


def test_singleton_second_run_waits_and_is_requeued_not_failed(run_worker, redis_conn):
    first = enqueue("tests.singleton", {"key": "sub:7", "name": "s1"})
    second = enqueue("tests.singleton", {"key": "sub:7", "name": "s2"})
    assert job_run_mark_running(first.pk, "other-worker") is not None  # first is running elsewhere

    execute(str(second.pk))

    second.refresh_from_db()
    assert (second.status, second.attempt) == ("queued", 0)
    assert redis_conn.zscore(DELAYED_KEY, str(second.pk)) is not None
    assert "waiting: singleton sub:7 is running" in second.events.last().message
    assert JobRun.objects.filter(singleton_key="sub:7", status="running").count() == 1


def _run_in_thread(run_id):
    def target():
        try:
            execute(str(run_id))
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_cancel_running_handler_stops_cooperatively(redis_conn):
    run = enqueue("tests.block", {"name": "cancel-me"})
    thread = _run_in_thread(run.pk)
    assert blpop_within(redis_conn, started_key("cancel-me"), 10)

    job_run_cancel(run, reason="operator stop")
    thread.join(10)

    run.refresh_from_db()
    assert run.status == "cancelled" and run.cancel_reason == "operator stop"
    assert run.result is None


def test_supersede_cancels_a_running_handler(redis_conn):
    older = enqueue("tests.supersede", {"key": "sub:9", "name": "old"})
    thread = _run_in_thread(older.pk)
    assert blpop_within(redis_conn, started_key("old"), 10)

    newer = enqueue("tests.supersede", {"key": "sub:9", "name": "new"})
    thread.join(10)

    older.refresh_from_db()
    assert older.status == "cancelled"
    assert older.cancel_reason == f"superseded by run {newer.pk}"
    assert JobRun.objects.get(pk=newer.pk).status == "queued"


def test_progress_is_recorded(redis_conn):
    run = enqueue("tests.block", {"name": "progress"})
    redis_conn.rpush(release_key("progress"), "go")
    execute(str(run.pk))
    run.refresh_from_db()
    assert (run.status, run.progress, run.progress_message) == ("completed", 100, "released")
