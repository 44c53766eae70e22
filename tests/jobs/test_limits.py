"""Limits per job type (jobs/limits.py): concurrency and rate, across real worker processes."""

import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from jobs import dispatch, enqueue, limits
from jobs.checks import job_limits_check
from jobs.models import JobRun
from jobs.registry import JobType, Payload, Registry, registry
from jobs.services import delayed_runs_push_due, job_runs_recover, limits_promote_waiting
from tests.factories import UserFactory
from tests.jobs.handlers import blpop_within, in_flight_keys, started_key

Status = JobRun.Status


def wait_until_all(runs, statuses, timeout=60.0):
    deadline = time.monotonic() + timeout
    ids = [run.pk for run in runs]
    while time.monotonic() < deadline:
        if JobRun.objects.filter(pk__in=ids).exclude(status__in=statuses).count() == 0:
            return
        time.sleep(0.1)  # polling rows other processes write; there is no event to wait on
    left = dict(JobRun.objects.filter(pk__in=ids).exclude(status__in=statuses).values_list("pk", "status"))
    raise AssertionError(f"runs not yet {statuses}: {left}")


def max_in_any_window(times, window=1_000_000) -> int:
    """The most start times (whole microseconds, as the database keeps them) in any [t, t + window)."""
    times = sorted(times)
    best, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


# --- declaring ---------------------------------------------------------------------------


def test_a_bad_declaration_is_refused_with_its_reason():
    class P(Payload):
        provider: str

    private = Registry()
    for bad, reason in (
        ({"rate_limit": "lots"}, "rate_limit must look like"),
        ({"rate_limit": "0/s"}, "at least 1"),
        ({"concurrency_limit": 0}, "concurrency_limit must be"),
        ({"limit_key": "{supplier}"}, "names supplier, not a payload field"),
    ):
        with pytest.raises(ValueError, match=reason):
            private.register(JobType(name="tests.bad", handler=lambda ctx, p: None, payload=P, **bad))


def test_rates_read_as_operators_write_them():
    assert (limits.parse_rate("100/s").count, limits.parse_rate("100/s").period) == (100, 1.0)
    assert limits.parse_rate("10/m").period == 60.0
    assert limits.parse_rate("30/10s").period == 10.0
    assert limits.parse_rate("5/hour").period == 3600.0
    for bad in ("", "100", "s/100", "100/d", "-1/s", 100, None):
        with pytest.raises(ValueError):
            limits.parse_rate(bad)


def test_settings_override_the_declaration_and_none_removes_a_limit(settings):
    declared = registry.get("tests.limited")
    assert limits.limits_for(declared).concurrency == 1
    settings.JOBS_LIMITS = {"tests.limited": {"concurrency_limit": 3, "rate_limit": "7/m"}}
    overridden = limits.limits_for(declared)
    assert (overridden.concurrency, overridden.rate.count, overridden.rate.period) == (3, 7, 60.0)
    settings.JOBS_LIMITS = {"tests.limited": {"concurrency_limit": None}}
    assert not limits.limits_for(declared).active


def test_the_system_check_names_each_bad_entry(settings):
    settings.JOBS_LIMITS = {
        "tests.rated": {"rate_limit": "100/s"},
        "tests.limited": {"rate_limit": "quickly", "concurrency": 2},
        "no.such": {"concurrency_limit": 1},
        "tests.fail": 5,
    }
    messages = [error.msg for error in job_limits_check()]
    assert any("JOBS_LIMITS['tests.limited']" in m and "'quickly'" in m for m in messages)
    assert any("JOBS_LIMITS['tests.limited']" in m and "unknown setting(s) concurrency" in m for m in messages)
    assert any("JOBS_LIMITS['no.such']" in m and "no job type" in m for m in messages)
    assert any("JOBS_LIMITS['tests.fail']" in m for m in messages)
    assert not any("tests.rated" in m for m in messages)
    assert {error.id for error in job_limits_check()} == {"jobs.E001"}

    settings.JOBS_LIMITS = {"tests.limited": {"concurrency_limit": 2, "limit_key": "{name}"}}
    assert job_limits_check() == []


# --- in one process ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_runs_over_a_rate_set_in_settings_wait_queued_for_their_start_and_none_is_lost(settings, run_worker):
    settings.JOBS_LIMITS = {"jobs.ping": {"rate_limit": "2/m"}}
    runs = [enqueue("jobs.ping", {"message": str(n)}) for n in range(5)]
    run_worker()

    statuses = {run.pk: JobRun.objects.get(pk=run.pk) for run in runs}
    done = [run for run in statuses.values() if run.status == Status.COMPLETED]
    waiting = [run for run in statuses.values() if run.status == Status.QUEUED]
    assert len(done) == 2 and len(waiting) == 3
    for run in waiting:
        assert run.waiting_for_limit.startswith("rate jobs.ping (2/m starts)")
        assert run.scheduled_for > timezone.now() + timedelta(seconds=50)  # the start a minute after the first
        assert run.events.filter(message__startswith="waiting for its limit: rate").exists()
    # Each waits in the delayed set at its own time, spaced by the rate: they do not all come back at once.
    times = sorted(dispatch.redis_connection().zscore(dispatch.DELAYED_KEY, str(run.pk)) for run in waiting)
    assert times[1] - times[0] == pytest.approx(30, abs=1) and times[2] - times[1] == pytest.approx(30, abs=1)

    # Their time comes: they start, in turn, and the marker is gone.
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        delayed_runs_push_due()
    settings.JOBS_LIMITS = {}
    run_worker()
    for run in runs:
        run.refresh_from_db()
        assert run.status == Status.COMPLETED and run.attempt == 1 and run.waiting_for_limit == ""


@pytest.mark.django_db(transaction=True)
def test_a_waiting_run_shows_in_the_admin_and_the_api(settings, run_worker, client):
    settings.JOBS_LIMITS = {"jobs.ping": {"rate_limit": "1/h"}}
    first, second = enqueue("jobs.ping", {"message": "a"}), enqueue("jobs.ping", {"message": "b"})
    run_worker()
    second.refresh_from_db()
    assert second.status == Status.QUEUED and second.waiting_for_limit

    staff = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(staff)
    listing = client.get("/admin/jobs/jobrun/").content.decode()
    assert listing.count("waiting for its limit</small>") == 1
    detail = client.get(f"/admin/jobs/jobrun/{second.pk}/change/").content.decode()
    assert "rate jobs.ping (1/h starts)" in detail
    api = APIClient()
    api.force_authenticate(staff)
    assert api.get(f"/api/v1/jobs/{second.pk}/").json()["waiting_for_limit"] == "rate jobs.ping (1/h starts)"
    assert api.get(f"/api/v1/jobs/{first.pk}/").json()["waiting_for_limit"] == ""


@pytest.mark.django_db(transaction=True)
def test_an_expired_hold_frees_its_slot_for_the_next_waiting_run(settings, redis_conn):
    # A worker that died without a word never releases: its hold runs out by itself.
    settings.JOBS_LIMIT_LEASE_GRACE_SECONDS = 0
    lim = limits.Limits("tests.limited", concurrency=1)
    dead, waiting = enqueue("tests.limited", {"name": "x"}), enqueue("tests.limited", {"name": "y"})
    assert limits.admit(lim, "tests.limited:k", str(dead.pk), 0, redis_conn).allowed
    assert limits.admit(lim, "tests.limited:k", str(waiting.pk), 30, redis_conn).allowed  # the hold is over
    redis_conn.delete("kordant:limit:tests.limited:k:holders")
    assert limits.admit(lim, "tests.limited:k", str(dead.pk), 600, redis_conn).allowed
    assert not limits.admit(lim, "tests.limited:k", str(waiting.pk), 30, redis_conn).allowed
    assert limits_promote_waiting() == 0  # the holder is alive: nobody is promoted

    redis_conn.zadd("kordant:limit:tests.limited:k:holders", {str(dead.pk): 1})  # its hold ran out long ago
    assert limits_promote_waiting() == 1
    assert limits.holders("tests.limited:k", redis_conn) == [str(waiting.pk)]
    assert redis_conn.zscore(dispatch.DELAYED_KEY, str(waiting.pk)) is not None
    assert redis_conn.hlen(limits.WAITING_INDEX) == 0 and redis_conn.scard(limits.WAITING_KEYS) == 0


# --- across real worker processes ----------------------------------------------------------


def test_concurrency_holds_across_two_worker_processes_and_nothing_is_lost(worker_process, manage_process, redis_conn):
    runs = [enqueue("tests.limited", {"name": "pair", "key": "provider-a", "seconds": 0.3}) for _ in range(6)]
    other = enqueue("tests.limited", {"name": "other", "key": "provider-b", "seconds": 0.3})
    worker_process()
    worker_process()
    manage_process("rqscheduler")  # moves promoted runs back to their queue
    wait_until_all([*runs, other], {Status.COMPLETED})

    assert redis_conn.get(in_flight_keys("pair")[1]) == b"1", "two runs of one key ran at once"
    assert redis_conn.llen(started_key("pair")) == 6
    for run in runs:
        run.refresh_from_db()
        assert run.attempt == 1 and run.error == ""
    waited = JobRun.objects.filter(pk__in=[r.pk for r in runs], events__message__startswith="waiting for its limit")
    assert waited.exists(), "with two workers and one slot, some run must have waited"
    assert limits.holders("tests.limited:provider-a", redis_conn) == []


def test_a_killed_workers_slot_is_released_and_the_waiting_run_runs(worker_process, redis_conn, run_worker):
    held = enqueue("tests.limited", {"name": "victim", "seconds": 60, "block": True})
    worker = worker_process()
    assert blpop_within(redis_conn, started_key("victim"), 30), "the worker never started the job"
    waiting = enqueue("tests.limited", {"name": "next"})
    run_worker()  # a second worker finds the slot taken
    waiting.refresh_from_db()
    assert waiting.status == Status.QUEUED and waiting.waiting_for_limit.startswith("concurrency tests.limited:k")

    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text()
    for pid in [worker.pid, *map(int, children.split())]:
        os.kill(pid, signal.SIGKILL)
    worker.wait(10)
    assert job_runs_recover().lost == [str(held.pk)]  # the recovery pass sees the worker dead

    with time_machine.travel(timezone.now() + timedelta(seconds=2)):
        assert delayed_runs_push_due() == 1
    run_worker()
    waiting.refresh_from_db()
    assert waiting.status == Status.COMPLETED and waiting.attempt == 1
    assert redis_conn.llen(started_key("next")) == 1


def test_rate_holds_across_two_worker_processes_and_none_is_lost(worker_process, manage_process, redis_conn):
    runs = [enqueue("tests.rated", {}) for _ in range(20)]
    worker_process()
    worker_process()
    manage_process("rqscheduler")
    wait_until_all(runs, {Status.COMPLETED})

    epoch, micro = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)
    started = [(run.started_at - epoch) // micro for run in JobRun.objects.filter(pk__in=[r.pk for r in runs])]
    assert max_in_any_window(started) <= 5
    assert max(started) - min(started) >= 3_000_000  # 20 starts at 5 a second take at least three seconds
    assert set(JobRun.objects.filter(pk__in=[r.pk for r in runs]).values_list("attempt", flat=True)) == {1}


def test_limits_set_in_settings_reach_worker_processes(manage_process, redis_conn, monkeypatch):
    # JOBS_LIMITS is read from the environment (JSON), like every other setting.
    monkeypatch.setenv("JOBS_LIMITS", json.dumps({"tests.limited": {"concurrency_limit": 2}}))
    runs = [enqueue("tests.limited", {"name": "two", "seconds": 0.5}) for _ in range(6)]
    for _ in range(3):
        manage_process("rqworker", "default")
    manage_process("rqscheduler")
    wait_until_all(runs, {Status.COMPLETED})
    assert redis_conn.get(in_flight_keys("two")[1]) == b"2"


@pytest.mark.django_db(transaction=True)
def test_a_stale_job_of_a_finished_run_takes_no_slot_and_records_nothing(settings, run_worker, redis_conn):
    settings.JOBS_LIMITS = {"jobs.ping": {"concurrency_limit": 1}}
    run = enqueue("jobs.ping", {"message": "once"})
    run_worker()
    run.refresh_from_db()
    events = run.events.count()
    holder = enqueue("jobs.ping", {"message": "holder"})
    lim = limits.limits_for(registry.get("jobs.ping"))
    assert limits.admit(lim, "jobs.ping", str(holder.pk), 60, redis_conn).allowed  # the one slot is taken
    dispatch.push([dispatch.Dispatch(str(run.pk), run.queue, run.timeout)])  # the finished run's job, again
    redis_conn.lrem("rq:queue:default", 0, str(holder.pk))
    run_worker()

    run.refresh_from_db()
    assert run.status == Status.COMPLETED and run.events.count() == events
    assert redis_conn.hlen(limits.WAITING_INDEX) == 0


def test_a_long_payload_key_is_hashed_into_a_short_redis_key():
    lim = limits.Limits("tests.limited", concurrency=1, key="{key}")
    payload = registry.get("tests.limited").validate({"key": "x" * 10_000})
    key = lim.key_for(payload)
    assert key.startswith("tests.limited:sha256:") and len(key) < 100
    assert lim.key_for(registry.get("tests.limited").validate({"key": "a"})) == "tests.limited:a"


def test_a_waiting_run_keeps_its_reserved_start_and_a_newcomer_queues_behind_it(redis_conn):
    lim = limits.Limits("tests.rated", rate=limits.parse_rate("2/m"))
    first, second = limits.admit(lim, "r", "a", 30, redis_conn), limits.admit(lim, "r", "b", 30, redis_conn)
    assert first.allowed and second.allowed and second.at >= first.at
    late = limits.admit(lim, "r", "c", 30, redis_conn)
    newcomer = limits.admit(lim, "r", "d", 30, redis_conn)
    assert not late.allowed and not newcomer.allowed
    # The next free start is a minute after the first; the next one period/count after that.
    assert late.at - first.at == timedelta(minutes=1)
    assert newcomer.at - late.at == timedelta(seconds=30)
    # Coming back early to a full window keeps the same reservation; it does not go to the back.
    assert limits.admit(lim, "r", "c", 30, redis_conn).at == late.at
    # A run that was promised nothing queues behind the promises, even when a start is free.
    redis_conn.delete("kordant:limit:r:starts")
    assert not limits.admit(lim, "r", "e", 30, redis_conn).allowed
    assert limits.admit(lim, "r", "c", 30, redis_conn).allowed  # a reserved run takes the free start
