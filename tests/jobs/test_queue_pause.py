"""Pausing one queue: workers of both classes take nothing from it, its jobs stay queued, resume is prompt."""

import pytest

from jobs import enqueue
from jobs.registry import QUEUES
from jobs.selectors import queue_depths, queues_paused
from jobs.services import queue_pause, queue_resume
from tests.jobs.handlers import blpop_within, release_key, started_key
from tests.jobs.test_worker import wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)


def test_pause_and_resume_are_recorded_and_read_back(admin_user):
    from django.contrib.admin.models import LogEntry

    queue_pause("low", user=admin_user)
    assert queues_paused() == {"low"}
    queue_resume("low", user=admin_user)
    assert queues_paused() == set()
    assert list(LogEntry.objects.order_by("pk").values_list("change_message", flat=True)) == [
        "Paused queue low.",
        "Resumed queue low.",
    ]
    with pytest.raises(ValueError, match="unknown queue"):
        queue_pause("nope")


def test_a_burst_worker_leaves_a_paused_queue_alone_and_runs_it_once_resumed(run_worker):
    waiting = enqueue("jobs.ping", {"message": "wait"}, priority="low")
    other = enqueue("jobs.ping", {"message": "go"}, priority="default")
    queue_pause("low")

    run_worker()

    waiting.refresh_from_db()
    other.refresh_from_db()
    assert (waiting.status, other.status) == ("queued", "completed")
    assert queue_depths()["low"] == 1

    queue_resume("low")
    run_worker()
    waiting.refresh_from_db()
    assert waiting.status == "completed"


def test_a_worker_whose_every_queue_is_paused_takes_nothing(run_worker):
    for name in QUEUES:
        queue_pause(name)
    run = enqueue("jobs.ping", {"message": "wait"})
    run_worker()
    run.refresh_from_db()
    assert run.status == "queued"


def test_a_running_forking_worker_stops_taking_from_a_paused_queue_and_resumes_promptly(worker_process, redis_conn):
    # The production class (settings.RQ's KordantWorker), as a real long-running process.
    queue_pause("low")
    worker = worker_process()
    paused_run = enqueue("jobs.ping", {"message": "paused"}, priority="low")
    marker = enqueue("tests.block", {"name": "marker", "seconds": 10}, priority="default")
    # The worker took the marker from "default" after the low job was queued: it passed "low" over.
    assert blpop_within(redis_conn, started_key("marker"), 30), "the worker never started"
    redis_conn.rpush(release_key("marker"), "go")
    wait_for_status(marker, {"completed"})
    paused_run.refresh_from_db()
    assert paused_run.status == "queued" and queue_depths()["low"] == 1

    queue_resume("low")  # while the worker is idle, blocked waiting for work
    wait_for_status(paused_run, {"completed"}, timeout=10)
    assert worker.poll() is None
