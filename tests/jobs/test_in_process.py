"""In-process mode (JOBS_RUN_IN_PROCESS): `enqueue` runs the job in the caller once its
transaction commits, through the same runner as a worker, with the same records."""

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import transaction
from django.utils import timezone

from jobs import enqueue
from jobs.checks import in_process_mode_check
from jobs.dispatch import DELAYED_KEY
from jobs.models import JobRun
from jobs.services import delayed_runs_push_due
from tests.jobs.handlers import started_key

pytestmark = pytest.mark.django_db(transaction=True)

# A job that completes, one that fails then completes on its retry, one that fails for good.
CASES = [("jobs.ping", {"message": "hello"}), ("tests.flaky", {}), ("tests.permanent", {"message": "no way"})]


def history(run: JobRun) -> list[tuple]:
    return [(event.status, event.attempt, event.message) for event in run.events.order_by("at", "id")]


def test_in_process_mode_records_the_same_events_as_a_burst_worker(settings, run_worker, redis_conn):
    with time_machine.travel(timezone.now().replace(microsecond=0), tick=False) as clock:
        settings.JOBS_RUN_IN_PROCESS = True
        with transaction.atomic():
            in_process = [enqueue(job_type, payload) for job_type, payload in CASES]
            assert {run.status for run in JobRun.objects.all()} == {"pending"}, "ran before the commit"
        # Ran at the commit, in this process; nothing was left on a queue for a worker.
        assert [JobRun.objects.get(pk=run.pk).status for run in in_process] == ["completed", "retrying", "failed"]
        assert all(redis_conn.llen(f"rq:queue:{name}") == 0 for name in ("critical", "high", "default", "low"))

        settings.JOBS_RUN_IN_PROCESS = False
        with transaction.atomic():
            by_worker = [enqueue(job_type, payload) for job_type, payload in CASES]
        run_worker()

        # The retry waits in the delayed set like any other, and a worker runs it when due.
        flaky = (in_process[1], by_worker[1])
        assert all(redis_conn.zscore(DELAYED_KEY, str(run.pk)) is not None for run in flaky)
        clock.shift(timedelta(minutes=1))
        assert delayed_runs_push_due() == 2
        run_worker()

    for mine, theirs in zip(in_process, by_worker, strict=True):
        mine.refresh_from_db()
        theirs.refresh_from_db()
        assert history(mine) == history(theirs), mine.job_type
        assert (mine.status, mine.attempt, mine.result, mine.error, mine.error_type) == (
            theirs.status,
            theirs.attempt,
            theirs.result,
            theirs.error,
            theirs.error_type,
        )
    assert [run.status for run in in_process] == ["completed", "completed", "failed"]
    assert [status for status, _, _ in history(in_process[1])] == [
        *("pending", "queued", "running", "retrying"),
        *("queued", "running", "completed"),
    ]


def test_in_process_mode_runs_nothing_when_the_transaction_rolls_back(settings, redis_conn):
    settings.JOBS_RUN_IN_PROCESS = True
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue("tests.block", {"name": "rolled-back", "seconds": 0.1})
        raise RuntimeError("the caller's transaction fails")

    assert not JobRun.objects.exists()
    assert redis_conn.llen(started_key("rolled-back")) == 0, "the handler ran"
    assert redis_conn.dbsize() == 0


def test_a_delayed_run_waits_for_its_time_even_in_process(settings, redis_conn):
    settings.JOBS_RUN_IN_PROCESS = True
    run = enqueue("jobs.ping", {"message": "later"}, delay=60)
    run.refresh_from_db()
    assert run.status == "queued" and redis_conn.zscore(DELAYED_KEY, str(run.pk)) is not None


def test_a_check_warns_when_in_process_mode_is_on_without_debug(settings):
    settings.JOBS_RUN_IN_PROCESS, settings.DEBUG = True, False
    (warning,) = in_process_mode_check(None)
    assert warning.id == "jobs.W001" and "JOBS_RUN_IN_PROCESS" in warning.msg
    with pytest.raises(SystemCheckError):
        call_command("check", fail_level="WARNING")

    settings.DEBUG = True
    assert in_process_mode_check(None) == []
    settings.JOBS_RUN_IN_PROCESS, settings.DEBUG = False, False
    assert in_process_mode_check(None) == []


def test_in_process_mode_needs_no_redis_for_a_job_due_now(settings):
    # `manage.py runserver` alone: no Redis is running at all.
    from kordant.embedded_redis import free_port

    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    settings.JOBS_RUN_IN_PROCESS = True
    settings.RQ_QUEUES = {name: {**queue, "URL": nowhere} for name, queue in settings.RQ_QUEUES.items()}
    run = enqueue("jobs.ping", {"message": "no redis"})
    run.refresh_from_db()
    assert (run.status, run.result) == ("completed", {"message": "no redis"})
