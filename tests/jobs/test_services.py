"""Enqueue, dedupe, supersede, cancel, retry by hand, recovery and pruning, on real Redis."""

import json
import os
import socket
import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from jobs import EnqueueRequest, enqueue, enqueue_many
from jobs.dispatch import DELAYED_KEY, RUNNER
from jobs.errors import InvalidTransition, PayloadInvalid, UnknownJobType
from jobs.models import JobEvent, JobRun
from jobs.services import job_run_cancel, job_run_mark_running, job_run_retry, job_runs_prune, job_runs_recover
from tests.postgres import analyze, foreign_keys_checked_at_once, rows_read_by_scans

pytestmark = pytest.mark.django_db(transaction=True)


def queued_ids(redis_conn, queue="default"):
    return [raw.decode() for raw in redis_conn.lrange(f"rq:queue:{queue}", 0, -1)]


def test_enqueue_runs_through_a_worker_to_completed(run_worker, redis_conn):
    run = enqueue("jobs.ping", {"message": "hello"})
    assert queued_ids(redis_conn) == [str(run.pk)]

    run_worker()

    run.refresh_from_db()
    assert run.status == JobRun.Status.COMPLETED
    assert run.result == {"message": "hello"}
    assert run.attempt == 1 and run.worker_name
    assert [event.status for event in run.events.all()] == ["pending", "queued", "running", "completed"]


def test_invalid_payload_is_refused_with_field_errors(redis_conn):
    with pytest.raises(PayloadInvalid) as error:
        enqueue("jobs.ping", {"message": ["not", "a", "string"], "colour": "red"})
    assert set(error.value.errors) == {"message", "colour"}
    assert not JobRun.objects.exists()
    assert redis_conn.dbsize() == 0


def test_unknown_job_type_is_refused(redis_conn):
    with pytest.raises(UnknownJobType):
        enqueue("nope.nothing", {})
    assert not JobRun.objects.exists()


def test_unknown_priority_is_refused():
    with pytest.raises(PayloadInvalid, match="priority"):
        enqueue("jobs.ping", {"message": "x"}, priority="urgent")
    assert not JobRun.objects.exists()


def test_rollback_leaves_no_row_and_no_redis_job(redis_conn):
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue("jobs.ping", {"message": "never"})
        raise RuntimeError("caller's transaction fails")
    assert not JobRun.objects.exists()
    assert redis_conn.dbsize() == 0


def test_nothing_reaches_redis_before_commit(redis_conn):
    with transaction.atomic():
        run = enqueue("jobs.ping", {"message": "later"})
        assert queued_ids(redis_conn) == []
        assert JobRun.objects.get(pk=run.pk).status == "pending"
    assert queued_ids(redis_conn) == [str(run.pk)]
    assert JobRun.objects.get(pk=run.pk).status == "queued"


def test_priority_picks_the_queue(redis_conn):
    run = enqueue("jobs.ping", {"message": "now"}, priority="critical")
    assert queued_ids(redis_conn, "critical") == [str(run.pk)]


def test_json_on_the_wire(redis_conn):
    run = enqueue("jobs.ping", {"message": "hi"})
    raw = redis_conn.hgetall(f"rq:job:{run.pk}")
    data = raw[b"data"]  # RQ reads its data compressed or, as here, plain
    assert not data.startswith(b"\x80"), "pickle protocol header found"
    assert json.loads(data) == [RUNNER, None, [str(run.pk)], {}]


def test_redis_down_at_commit_then_recovered(settings, run_worker, redis_conn):
    good_queues = settings.RQ_QUEUES
    settings.RQ_QUEUES = {name: {**queue, "URL": "redis://127.0.0.1:1/0"} for name, queue in good_queues.items()}
    run = enqueue("jobs.ping", {"message": "survives"})
    run.refresh_from_db()
    assert run.status == "pending"

    settings.RQ_QUEUES = good_queues
    assert job_runs_recover().requeued == []  # too fresh: its own on_commit push may still be on the way
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        assert job_runs_recover().requeued == [str(run.pk)]
    run_worker()
    run.refresh_from_db()
    assert run.status == "completed"


def test_redis_flushed_recovery_requeues_everything(run_worker, redis_conn):
    runs = [enqueue("jobs.ping", {"message": str(i)}) for i in range(3)]
    later = enqueue("jobs.ping", {"message": "later"}, delay=timedelta(hours=1))
    redis_conn.flushdb()

    report = job_runs_recover()

    assert sorted(report.requeued) == sorted(str(run.pk) for run in [*runs, later])
    assert redis_conn.zscore(DELAYED_KEY, str(later.pk)) is not None
    run_worker()
    assert JobRun.objects.filter(status="completed").count() == 3
    assert JobRun.objects.get(pk=later.pk).status == "queued"


def test_a_run_rq_gave_up_on_before_it_was_claimed_is_requeued(run_worker, redis_conn, monkeypatch):
    from jobs import services

    run = enqueue("jobs.ping", {"message": "claim refused"})
    with monkeypatch.context() as patched:
        # As when SQLite said "database is locked" to the claim: the RQ job fails, the row stays queued.
        patched.setattr(services, "job_run_mark_running", lambda *a: (_ for _ in ()).throw(RuntimeError("locked")))
        run_worker()
    assert redis_conn.hget(f"rq:job:{run.pk}", "status") == b"failed"
    assert JobRun.objects.get(pk=run.pk).status == "queued"

    assert job_runs_recover().requeued == [str(run.pk)]
    run_worker()
    assert JobRun.objects.get(pk=run.pk).status == "completed"


def test_delay_waits_in_the_delayed_set_until_due(run_worker, redis_conn):
    from jobs.services import delayed_runs_push_due

    run = enqueue("jobs.ping", {"message": "later"}, delay=timedelta(minutes=10))
    assert queued_ids(redis_conn) == []
    assert delayed_runs_push_due() == 0
    with time_machine.travel(timezone.now() + timedelta(minutes=10, seconds=1)):
        assert delayed_runs_push_due() == 1
    run_worker()
    run.refresh_from_db()
    assert run.status == "completed"


def test_dedupe_key_returns_the_existing_active_run(run_worker):
    first = enqueue("jobs.ping", {"message": "a"}, dedupe_key="scan:42")
    second = enqueue("jobs.ping", {"message": "b"}, dedupe_key="scan:42")
    assert second.pk == first.pk
    run_worker()
    third = enqueue("jobs.ping", {"message": "c"}, dedupe_key="scan:42")
    assert third.pk != first.pk, "a finished run no longer holds its key"


def test_dedupe_holds_under_two_concurrent_enqueues():
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the concurrent race is exercised on PostgreSQL in CI")
    barrier = threading.Barrier(2)
    results, errors = [], []

    def racer(message):
        try:
            barrier.wait(5)
            results.append(enqueue("jobs.ping", {"message": message}, dedupe_key="race").pk)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=racer, args=(str(i),)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors
    assert len(set(results)) == 1
    assert JobRun.objects.filter(dedupe_key="race").count() == 1


def test_enqueue_many_queues_and_runs_every_job(run_worker, redis_conn):
    requests = [EnqueueRequest("jobs.ping", {"message": str(i)}) for i in range(50)]
    runs = enqueue_many(requests)
    assert len(queued_ids(redis_conn)) == 50
    assert JobRun.objects.filter(status="queued").count() == 50
    run_worker()
    assert JobRun.objects.filter(status="completed").count() == 50
    assert {run.pk for run in runs} == set(JobRun.objects.values_list("pk", flat=True))


def test_enqueue_many_rows_hold_what_django_would_have_written(django_user_model):
    # enqueue_many builds its runs by position, not keyword: every column must still land right.
    user = django_user_model.objects.create(username="fan-out")
    [run] = enqueue_many(
        [EnqueueRequest("tests.singleton", {"key": "sub:3", "name": "n"}, priority="high", user=user, trigger="cron")]
    )
    assert run.user is user  # the caller's object, not a query
    made_by_django = JobRun.objects.create(
        job_type="tests.singleton",
        payload={"key": "sub:3", "name": "n", "seconds": 30.0},
        queue="high",
        trigger="cron",
        user=user,
        singleton_key="sub:3",
        max_attempts=4,
        timeout=600,
    )
    ours = JobRun.objects.values().get(pk=run.pk)
    django = JobRun.objects.values().get(pk=made_by_django.pk)
    differing = {name for name in ours if ours[name] != django[name]}
    assert differing == {"id", "status", "created_at", "updated_at", "enqueued_at"}
    assert list(run.events.values_list("status", "message")) == [("pending", "enqueued"), ("queued", "queued")]


def test_enqueue_many_validates_everything_first():
    with pytest.raises(PayloadInvalid):
        enqueue_many([EnqueueRequest("jobs.ping", {"message": "ok"}), EnqueueRequest("jobs.ping", {})])
    assert not JobRun.objects.exists()


def test_cancel_queued_run_never_starts(run_worker):
    run = enqueue("jobs.ping", {"message": "x"})
    job_run_cancel(run, reason="changed my mind")
    run_worker()
    run.refresh_from_db()
    assert run.status == "cancelled" and run.attempt == 0 and run.cancel_reason == "changed my mind"


def test_cancel_completed_run_is_refused(run_worker):
    run = enqueue("jobs.ping", {"message": "x"})
    run_worker()
    with pytest.raises(InvalidTransition, match="already completed"):
        job_run_cancel(run)


def test_retry_by_hand_runs_a_failed_run_again(run_worker):
    run = enqueue("tests.permanent", {"message": "bad config"})
    run_worker()
    run.refresh_from_db()
    assert run.status == "failed"

    job_run_retry(run)
    run.refresh_from_db()
    assert run.status == "queued" and run.attempt == 0
    run_worker()
    run.refresh_from_db()
    assert run.status == "failed" and run.attempt == 1
    assert "retried by hand" in " ".join(run.events.values_list("message", flat=True))


def test_retry_refuses_a_failed_run_while_another_run_holds_its_dedupe_key(run_worker):
    """Was a 500 in the admin sweep: the retry broke the one-active-run-per-dedupe-key constraint."""
    failed = enqueue("tests.permanent", {"message": "first"}, dedupe_key="scan:7")
    run_worker()
    waiting = enqueue("tests.permanent", {"message": "second"}, dedupe_key="scan:7", delay=3600)
    with pytest.raises(InvalidTransition, match=f"run {waiting.pk}"):
        job_run_retry(failed)
    failed.refresh_from_db()
    assert failed.status == "failed"


def test_retry_refuses_a_completed_run(run_worker):
    run = enqueue("jobs.ping", {"message": "x"})
    run_worker()
    with pytest.raises(InvalidTransition):
        job_run_retry(run)


def test_supersede_cancels_the_older_waiting_run(run_worker):
    older = enqueue("tests.supersede", {"key": "sub:1", "seconds": 0})
    newer = enqueue("tests.supersede", {"key": "sub:1", "seconds": 0})
    older.refresh_from_db()
    assert older.status == "cancelled"
    assert older.cancel_reason == f"superseded by run {newer.pk}"
    run_worker()
    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.status, older.attempt) == ("cancelled", 0)
    assert newer.status == "completed"


def test_prune_deletes_old_finished_runs_with_events_and_keeps_the_rest(run_worker, redis_conn):
    old_done = enqueue("jobs.ping", {"message": "old"})
    old_failed = enqueue("tests.permanent", {})
    run_worker()
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        recent_done = enqueue("jobs.ping", {"message": "recent"})
        run_worker()
        waiting = enqueue("jobs.ping", {"message": "waiting"})
        report = job_runs_prune()

    assert report.deleted == 1
    remaining = set(JobRun.objects.values_list("pk", flat=True))
    assert remaining == {old_failed.pk, recent_done.pk, waiting.pk}
    assert not JobEvent.objects.filter(job_run_id=old_done.pk).exists()

    with time_machine.travel(timezone.now() + timedelta(days=31)):
        assert job_runs_prune().deleted == 2  # the failed one (30 days) and the recent completed one
    assert set(JobRun.objects.values_list("pk", flat=True)) == {waiting.pk}


def test_running_run_whose_live_worker_moved_on_is_recovered(redis_conn):
    run = enqueue("jobs.ping", {"message": "orphan"})
    redis_conn.hset("rq:worker:alive-worker", mapping={"hostname": socket.gethostname(), "pid": os.getpid()})
    job_run_mark_running(run.pk, "alive-worker")
    redis_conn.delete(f"rq:job:{run.pk}")  # the execution ended, but its outcome was never written

    assert job_runs_recover().lost == [], "too soon: the claim may be seconds old"
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        assert job_runs_recover().lost == [str(run.pk)]
    run.refresh_from_db()
    assert run.status == "retrying" and "without a recorded outcome" in run.error


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's cached foreign-key check plans")
def test_a_fan_out_into_a_small_runs_table_is_checked_by_index_not_by_scanning_it_per_event():
    # As for periodic jobs: a process that enqueued a few runs while the table held a handful
    # caches a plan that scans it to check each event's run; a fan-out of 2,000 then read the
    # growing table once per event.
    # One transaction, rolled back (this module's tests commit): its own count of rows read, and
    # no runs left queued in Redis.
    table = JobRun._meta.db_table
    with transaction.atomic():
        analyze(table)
        foreign_keys_checked_at_once()
        for i in range(8):
            enqueue_many([EnqueueRequest("jobs.ping", {"message": f"early {i}"})])
        before = rows_read_by_scans(table)
        requests = [EnqueueRequest("jobs.ping", {"message": str(i)}) for i in range(2000)]

        enqueue_many(requests)

        # A scan or two of the whole table at most, not one per row (millions of rows read before).
        assert rows_read_by_scans(table) - before < 3 * len(requests)
        transaction.set_rollback(True)
