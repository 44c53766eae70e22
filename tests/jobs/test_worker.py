"""Real `manage.py rqworker` processes: killed, told to stop, and speaking JSON."""

import json
import os
import signal
import time
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from jobs import enqueue
from jobs.models import JobRun
from jobs.services import job_run_cancel, job_runs_recover
from tests.jobs.handlers import blpop_within, release_key, started_key


def wait_for_status(run, statuses, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in statuses:
            return run
        time.sleep(0.05)  # polling the database for another process's write; no event to wait on
    raise AssertionError(f"run stayed {run.status}, expected one of {statuses}")


def test_sigkilled_worker_run_is_retried_as_worker_lost(worker_process, redis_conn):
    run = enqueue("tests.block", {"name": "victim"})
    worker = worker_process()
    assert blpop_within(redis_conn, started_key("victim"), 30), "the worker never started the job"
    run.refresh_from_db()
    assert run.status == "running"

    # The worker and its work horse (its own process group), as when a machine dies.
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text()
    horses = [int(pid) for pid in children.split()]
    assert horses, "the forking worker has no work horse"
    for pid in [worker.pid, *horses]:
        os.kill(pid, signal.SIGKILL)
    worker.wait(10)
    report = job_runs_recover()

    run.refresh_from_db()
    assert report.lost == [str(run.pk)]
    assert run.status == "retrying" and run.error_type == "WorkerLost"
    assert run.error.startswith("worker lost")


def test_sigterm_lets_the_running_job_finish_then_the_worker_exits(worker_process, redis_conn):
    run = enqueue("tests.block", {"name": "graceful"})
    worker = worker_process()
    assert blpop_within(redis_conn, started_key("graceful"), 30)

    worker.send_signal(signal.SIGTERM)  # warm shutdown: finish the job in hand first
    redis_conn.rpush(release_key("graceful"), "go")
    assert worker.wait(30) == 0

    run.refresh_from_db()
    assert run.status == "completed" and run.result == {"released": True}


def test_cancel_stops_a_handler_that_ignores_it_after_the_grace_period(worker_process, redis_conn):
    run = enqueue("tests.stubborn", {"name": "stubborn", "seconds": 60})
    worker_process()
    assert blpop_within(redis_conn, started_key("stubborn"), 30)

    job_run_cancel(run, reason="operator stop")
    assert job_runs_recover().stopped == [], "stopped before the grace period ended"
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.JOBS_CANCEL_GRACE_SECONDS + 1)):
        assert job_runs_recover().stopped == [str(run.pk)]

    run = wait_for_status(run, {"cancelled"})
    assert run.cancel_reason == "operator stop" and run.result is None


def test_plain_rqworker_runs_jobs_with_no_extra_flags(worker_process):
    run = enqueue("jobs.ping", {"message": "from a real worker"})
    worker = worker_process("--burst")
    assert worker.wait(60) == 0, worker.stdout.read().decode()
    run.refresh_from_db()
    assert run.status == "completed" and run.result == {"message": "from a real worker"}


def test_forking_worker_records_what_each_work_horse_reports(worker_process, redis_conn):
    # The parent claims and records; horses that touch the database open their own connection.
    redis_conn.rpush(release_key("progress"), "go")
    progress = enqueue("tests.block", {"name": "progress"})  # reads ctx.cancelled, writes progress
    big = enqueue("tests.big", {"size": 200_000})
    failing = enqueue("tests.fail", {"message": "provider down"})
    cancelled = enqueue("tests.block", {"name": "never"})
    job_run_cancel(cancelled, reason="changed my mind")  # its RQ job is still queued

    worker = worker_process("--burst")
    assert worker.wait(60) == 0, worker.stdout.read().decode()

    for run in (progress, big, failing, cancelled):
        run.refresh_from_db()
    assert (progress.status, progress.progress_message) == ("completed", "released")
    assert progress.result == {"released": True}
    assert big.status == "completed" and big.result == {"data": "x" * 200_000}
    assert (failing.status, failing.attempt, failing.error_type) == ("retrying", 1, "RuntimeError")
    assert "RuntimeError: provider down" in failing.traceback
    assert (cancelled.status, cancelled.attempt) == ("cancelled", 0)
    assert [event.status for event in big.events.all()] == ["pending", "queued", "running", "completed"]


def test_the_forking_worker_warms_job_types_up_once_in_its_parent(worker_process):
    runs = [enqueue("tests.warmed", {}) for _ in range(2)] + [enqueue("tests.warm_up_fails", {})]

    worker = worker_process("--burst")
    assert worker.wait(60) == 0, worker.stdout.read().decode()

    first, second, survivor = (JobRun.objects.get(pk=run.pk) for run in runs)
    assert first.status == second.status == "completed"
    # Warmed in the long-lived parent, once: both horses (other processes) inherited it.
    assert first.result["warmed_in"] == second.result["warmed_in"] is not None
    assert first.result["warmed_in"] not in (first.result["runs_in"], second.result["runs_in"])
    assert (survivor.status, survivor.result) == ("completed", {"ran": True})


@pytest.mark.django_db(transaction=True)
def test_a_finished_run_leaves_nothing_of_it_in_redis(run_worker, redis_conn):
    # The worker deletes a finished job's keys itself rather than RQ's read-then-delete way.
    run = enqueue("jobs.ping", {"message": "tidy"})
    run_worker()
    run.refresh_from_db()
    assert run.status == "completed"
    run_id = str(run.pk).encode()
    assert [key for key in redis_conn.keys("*") if run_id in key] == []
    for key in redis_conn.keys("rq:*"):
        if redis_conn.type(key) == b"zset":
            assert not any(run_id in member for member in redis_conn.zrange(key, 0, -1)), key


@pytest.mark.django_db
def test_jobs_the_scheduler_creates_are_json_too(redis_conn):
    from django_rq import get_scheduler

    scheduler = get_scheduler("default")
    assert type(scheduler).__name__ == settings.RQ["SCHEDULER_CLASS"].rsplit(".", 1)[1]
    job = scheduler.enqueue_at(datetime(2030, 1, 1), "jobs.runner.execute", "some-id")
    data = zlib.decompress(redis_conn.hget(f"rq:job:{job.id}", "data"))
    assert json.loads(data) == ["jobs.runner.execute", None, ["some-id"], {}]
