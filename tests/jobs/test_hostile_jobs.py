"""Whoever can write to Redis must not run code nor jam the workers or the scheduler.

Each hostile entry is written by hand, field by field, the way an attacker with a Redis
client would, then a real `manage.py rqworker --burst` and a real scheduler pass meet it.
Nothing named in a hostile hash may be imported or called (tests/jobs/hostile_target.py
leaves a marker file if it is), and the job queued behind the hostile ones still runs.
"""

import contextlib
import json
import logging
import os
import pickle
import sys
import time
import uuid
import zlib
from datetime import datetime
from pathlib import Path

import django_rq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs import enqueue
from jobs.dispatch import RQ_FAILURE_TTL, RUNNER
from jobs.entries import FIRE, SCHEDULED_KEY, due_entries
from jobs.entrypoints import ENTRY_POINTS, QUARANTINE_KEY, job_refusal, quarantined
from jobs.models import JobRun
from jobs.worker import JobRefused, JSONJob

TARGET = "tests.jobs.hostile_target"


class _Shell:
    """Unpickling this runs a shell command: what a pickle-reading worker would do."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _json(*job_tuple) -> bytes:
    return json.dumps(list(job_tuple)).encode()


def hostile_entries(markers: Path) -> dict[str, dict]:
    """Job id -> the hash fields an attacker writes (None: the id with no hash at all)."""
    touch = f"touch {markers}/ran"
    run_id = lambda: str(uuid.uuid4())  # noqa: E731
    callback_id, dependency_id, webhook_id, status_id, repeat_id = (run_id() for _ in range(5))
    return {
        "foreign-function": {"data": _json("os.system", None, [touch], {})},
        "foreign-module": {"data": _json(f"{TARGET}.pwn", None, [], {})},
        "dunder-path": {"data": _json(f"{RUNNER}.__globals__", None, [], {})},
        callback_id: {
            # The runner itself, as a real run's job: only the callbacks are foreign.
            "data": _json(RUNNER, None, [callback_id], {}),
            "success_callback_name": f"{TARGET}.pwn",
            "failure_callback_name": f"{TARGET}.pwn",
            "stopped_callback_name": f"{TARGET}.pwn",
        },
        "pickle": {"data": pickle.dumps(("os.system", None, (_Shell(touch),), {}))},
        "zlib-pickle": {"data": zlib.compress(pickle.dumps(_Shell(touch)))},
        "garbage": {"data": b"\xff\xfe\x00{[garbage"},
        "not-a-uuid": {"data": _json(RUNNER, None, ["not-a-uuid"], {})},
        "missing-hash": None,
        dependency_id: {"data": _json(RUNNER, None, [dependency_id], {}), "dependency_ids": json.dumps(["x"])},
        webhook_id: {
            "data": _json(RUNNER, None, [webhook_id], {}),
            "webhooks": json.dumps([{"url": "http://127.0.0.1:9/", "job_status": "failed", "timeout": 86400}]),
        },
        # RQ's own fetch raises on this one; unguarded, that ends the worker.
        status_id: {"data": _json(RUNNER, None, [status_id], {}), "status": "bogus"},
        repeat_id: {"data": _json(RUNNER, None, [repeat_id], {}), "repeats_left": "1000000"},
        # Ids RQ cannot load at all: one it refuses to parse, and a key that is no hash.
        "bad id!": {"data": _json(RUNNER, None, ["bad id!"], {})},
        "not-a-hash": "a string, not a hash",
        # Megabytes RQ would have logged whole as it dequeued the job.
        "huge-description": {"data": _json("os.system", None, [touch], {}), "description": "x" * 5_000_000},
    }


def write_entry(redis_conn, job_id: str, fields, **hash_fields) -> None:
    if isinstance(fields, str):
        redis_conn.set(f"rq:job:{job_id}", fields)
    elif fields is not None:
        write_hash(redis_conn, job_id, fields, **hash_fields)


def failable(hostile: dict) -> set[str]:
    """The hostile jobs RQ can load, and so mark failed: all but a missing hash, a bad id, a non-hash."""
    return {job_id for job_id, fields in hostile.items() if isinstance(fields, dict) and " " not in job_id}


def write_hash(redis_conn, job_id: str, fields: dict, *, status="queued", origin="default") -> None:
    redis_conn.hset(
        f"rq:job:{job_id}",
        mapping={"origin": origin, "status": status, "created_at": "2026-01-01T00:00:00.000000Z", **fields},
    )


@pytest.fixture
def markers(tmp_path, monkeypatch):
    directory = tmp_path / "markers"
    directory.mkdir()
    monkeypatch.setenv("KORDANT_HOSTILE_MARKERS", str(directory))
    return directory


def burst_worker(worker_process) -> str:
    worker = worker_process("--burst")
    output, _ = worker.communicate(timeout=120)
    output = output.decode()
    assert worker.returncode == 0, output
    return output


@pytest.mark.django_db(transaction=True)
def test_a_burst_worker_refuses_every_hostile_job_and_runs_the_one_behind_them(worker_process, redis_conn, markers):
    hostile = hostile_entries(markers)
    for job_id, fields in hostile.items():
        write_entry(redis_conn, job_id, fields)
        redis_conn.sadd("rq:queues", "rq:queue:default")
        redis_conn.rpush("rq:queue:default", job_id)
    behind = enqueue("jobs.ping", {"message": "still here"})

    output = burst_worker(worker_process)

    assert sorted(path.name for path in markers.iterdir()) == [], output
    behind.refresh_from_db()
    assert (behind.status, behind.result) == ("completed", {"message": "still here"}), output
    failed = {member.decode() for member in redis_conn.zrange("rq:failed:default", 0, -1)}
    assert failed == failable(hostile), output
    # One clear line each (a missing hash is nothing to refuse), and in the quarantine list.
    assert len(output) < 100_000
    refused_lines = [line for line in output.splitlines() if "refused job" in line]
    assert len(refused_lines) == len(hostile) - 1, output
    assert {record["id"] for record in quarantined(connection=redis_conn)} == set(hostile) - {"missing-hash"}
    # No run row was touched, nor created, by a hostile job; nothing is left queued or parked.
    assert list(JobRun.objects.values_list("pk", flat=True)) == [behind.pk]
    assert redis_conn.llen("rq:queue:default") == 0
    assert redis_conn.llen("rq:queue:default:intermediate") == 0
    for job_id in failable(hostile):  # kept for an operator to look at, not forever
        assert 0 < redis_conn.ttl(f"rq:job:{job_id}") <= RQ_FAILURE_TTL


def scheduler():
    return django_rq.get_scheduler("default")


def stock_entry_behind(redis_conn) -> JobRun:
    """A legitimate rq-scheduler job, due after the hostile ones: a run scheduled the stock way."""
    run = enqueue("jobs.ping", {"message": "scheduled the stock way"})
    redis_conn.lrem(f"rq:queue:{run.queue}", 0, str(run.pk))
    job = scheduler().enqueue_at(datetime(2020, 1, 1), RUNNER, str(run.pk), job_id=str(run.pk), queue_name=run.queue)
    assert job.id == str(run.pk)
    return run


@pytest.mark.django_db(transaction=True)
def test_a_scheduler_pass_quarantines_every_hostile_entry_and_fires_the_one_behind(worker_process, redis_conn, markers):
    hostile = hostile_entries(markers)
    due = time.time() - 3600
    for job_id, fields in hostile.items():
        write_entry(redis_conn, job_id, fields, status="scheduled")
        redis_conn.zadd(SCHEDULED_KEY, {job_id: due})
    behind = stock_entry_behind(redis_conn)

    scheduler().enqueue_jobs()
    output = burst_worker(worker_process)

    assert sorted(path.name for path in markers.iterdir()) == [], output
    assert TARGET not in sys.modules
    behind.refresh_from_db()
    assert behind.status == "completed", output
    assert redis_conn.zcard(SCHEDULED_KEY) == 0
    # A missing hash is simply dropped, as rq-scheduler does; every other entry is quarantined.
    assert {record["id"] for record in quarantined(connection=redis_conn)} == set(hostile) - {"missing-hash"}
    assert list(JobRun.objects.values_list("pk", flat=True)) == [behind.pk]


# Issue 15, item 9: members no stock path can read, ahead of a legitimate one.
_ACCEPTED_ID = str(uuid.uuid4())
POISON = {
    "garbage data": ("poison-garbage", {"data": b"\x80\x81not json"}),
    "pickle": ("poison-pickle", {"data": pickle.dumps(("os.system", None, ("true",), {}))}),
    "unreadable status": ("poison-status", {"data": _json(RUNNER, None, ["x"], {}), "status": "??"}),
    "unreadable timeout": ("poison-timeout", {"data": _json(RUNNER, None, ["x"], {}), "timeout": "soon"}),
    # A job our class accepts, with a field only rq-scheduler reads, and cannot.
    "unreadable repeat": (
        _ACCEPTED_ID,
        {"data": _json(RUNNER, None, [_ACCEPTED_ID], {}), "meta": json.dumps({"repeat": "x"})},
    ),
    "not UTF-8": (b"\xff\xfe-member", None),
    "superscript pk": ("schedule-\u00b3", None),
    "execution key": ("poison-id:with-an-execution", None),
    "not a hash": ("poison-string", "a string"),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("member, fields", POISON.values(), ids=POISON.keys())
def test_a_poisoned_scheduled_entry_is_quarantined_once_and_entries_behind_it_fire(redis_conn, caplog, member, fields):
    write_entry(redis_conn, member, fields, status="scheduled")
    redis_conn.zadd(SCHEDULED_KEY, {member: time.time() - 3600})
    behind = stock_entry_behind(redis_conn)

    with caplog.at_level(logging.INFO, logger="jobs"):
        scheduler().enqueue_jobs()
    first_pass = [r for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="jobs"):
        scheduler().enqueue_jobs()
    second_pass = [r for r in caplog.records if r.levelno >= logging.WARNING]

    assert str(behind.pk).encode() in redis_conn.lrange(f"rq:queue:{behind.queue}", 0, -1)
    assert redis_conn.zcard(SCHEDULED_KEY) == 0
    # Logged once, in one line with no traceback; the next pass says nothing.
    assert len(first_pass) == 1 and first_pass[0].exc_info is None, [r.getMessage() for r in first_pass]
    assert "quarantined" in first_pass[0].getMessage()
    assert second_pass == []
    [record] = quarantined(connection=redis_conn)
    assert record["where"] == "scheduler" and record["reason"]


@pytest.mark.django_db
def test_the_quarantine_keeps_the_latest_records_only(redis_conn):
    from jobs.entrypoints import QUARANTINE_KEEP, quarantine_record

    for number in range(QUARANTINE_KEEP + 5):
        quarantine_record(f"job-{number}", "worker", "test", connection=redis_conn)
    records = quarantined(connection=redis_conn)
    assert len(records) == QUARANTINE_KEEP == redis_conn.llen(QUARANTINE_KEY)
    assert records[0]["id"] == f"job-{QUARANTINE_KEEP + 4}"


# The job class itself, which every path (worker, work horse, scheduler, django-rq's
# pages) loads jobs through: what it refuses, and that refusing imports nothing.


def job_from(redis_conn, job_id: str, fields: dict, **hash_fields) -> JSONJob:
    write_hash(redis_conn, job_id, fields, **hash_fields)
    return JSONJob.fetch(job_id, connection=redis_conn)


def a_run_job(redis_conn, **fields):
    run_id = str(uuid.uuid4())
    return job_from(redis_conn, run_id, {"data": _json(RUNNER, None, [run_id], {}), **fields})


@pytest.mark.django_db(transaction=True)
def test_what_the_project_writes_itself_is_accepted(redis_conn):
    run = enqueue("jobs.ping", {"message": "ok"})
    job = JSONJob.fetch(str(run.pk), connection=redis_conn)
    assert job_refusal(job) is None
    fire = job_from(redis_conn, "schedule-12", {"data": _json(FIRE, None, [12], {})}, origin="high")
    assert job_refusal(fire) is None


TRICKS = {
    "attribute of the runner": lambda r, i: {"data": _json(f"{RUNNER}.__globals__", None, [i], {})},
    "runner's module": lambda r, i: {"data": _json("jobs.runner", None, [i], {})},
    "runner with spaces": lambda r, i: {"data": _json(f" {RUNNER}", None, [i], {})},
    "instance method": lambda r, i: {"data": _json("execute", {"x": 1}, [i], {})},
    "runner on an instance": lambda r, i: {"data": _json(RUNNER, "self", [i], {})},
    "another run's id": lambda r, i: {"data": _json(RUNNER, None, [str(uuid.uuid4())], {})},
    "extra argument": lambda r, i: {"data": _json(RUNNER, None, [i, "x"], {})},
    "keyword argument": lambda r, i: {"data": _json(RUNNER, None, [i], {"job_run_id": i})},
    "function not a string": lambda r, i: {"data": _json(["os", "system"], None, [i], {})},
    "four is not five": lambda r, i: {"data": json.dumps([RUNNER, None, [i], {}, "x"]).encode()},
    "fire for another schedule": lambda r, i: {"data": _json(FIRE, None, [13], {})},
    "fire with a bool": lambda r, i: {"data": _json(FIRE, None, [True], {})},
    "success callback": lambda r, i: {"data": _json(RUNNER, None, [i], {}), "success_callback_name": "os.system"},
    "failure callback": lambda r, i: {"data": _json(RUNNER, None, [i], {}), "failure_callback_name": "os.system"},
    "stopped callback": lambda r, i: {"data": _json(RUNNER, None, [i], {}), "stopped_callback_name": "os.system"},
    "dependency": lambda r, i: {"data": _json(RUNNER, None, [i], {}), "dependency_id": "other"},
    "rate limit": lambda r, i: {
        "data": _json(RUNNER, None, [i], {}),
        "rate_limit_key": "x",
        "rate_limit_concurrency": "1",
    },
    "weird origin": lambda r, i: {"data": _json(RUNNER, None, [i], {}), "origin": "../../evil"},
    "huge data": lambda r, i: {"data": _json(RUNNER, None, [i, "x" * 5_000_000], {})},
}


@pytest.mark.django_db
@pytest.mark.parametrize("trick", TRICKS.values(), ids=TRICKS.keys())
def test_the_job_class_refuses_each_trick_without_importing_anything(redis_conn, trick):
    run_id = str(uuid.uuid4())
    job = job_from(redis_conn, run_id, trick(redis_conn, run_id))
    modules = set(sys.modules)
    assert job_refusal(job)
    with pytest.raises(JobRefused):
        job.func  # noqa: B018
    for callback in ("success_callback", "failure_callback", "stopped_callback"):
        with contextlib.suppress(JobRefused):
            assert getattr(job, callback) is None
    assert set(sys.modules) == modules


@settings(max_examples=200, deadline=None)
@given(name=st.one_of(st.text(max_size=60), st.sampled_from([f"{TARGET}.pwn", "os.system", "builtins.exec"])))
def test_no_function_name_but_an_entry_point_is_ever_imported(name):
    job = JSONJob(id=str(uuid.uuid4()), connection=django_rq.get_connection("default"))
    job.data = json.dumps([name, None, [job.id], {}]).encode()
    modules = set(sys.modules)
    if name not in ENTRY_POINTS:
        assert job_refusal(job)
        with pytest.raises(JobRefused):
            job.func  # noqa: B018
    assert set(sys.modules) == modules


def test_due_entries_sends_unreadable_members_to_the_stock_path(redis_conn):
    redis_conn.zadd(SCHEDULED_KEY, {b"\xff": 1, "schedule-007": 2, "schedule-\u00b3": 3, "schedule-7": 4})
    ours, others = due_entries(10, limit=10, connection=redis_conn)
    assert ours == [7]
    assert others == [b"\xff", b"schedule-007", "schedule-\u00b3".encode()]


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_shows_what_was_quarantined_and_survives_a_forged_list(admin_client, redis_conn, run_worker):
    write_hash(redis_conn, "foreign-function", {"data": _json("os.system", None, ["<b>touch x</b>"], {})})
    redis_conn.rpush("rq:queue:default", "foreign-function")
    run_worker()
    # Someone writing Redis can write the quarantine list too: such items are skipped.
    redis_conn.rpush(QUARANTINE_KEY, b"\xff not json", json.dumps({"id": 1}), json.dumps({"id": "x", "at": 1e300}))

    page = admin_client.get("/admin/jobs/jobrun/dashboard/")

    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="kj-quarantine"' in text and "<code>foreign-function</code>" in text
    assert "&#x27;os.system&#x27; is not a registered entry point" in text
    assert "<b>touch" not in text


@pytest.mark.django_db(transaction=True)
def test_django_rq_pages_show_refused_jobs_and_a_requeue_is_refused_again(
    admin_client, redis_conn, run_worker, markers, settings
):
    hostile = {job_id: fields for job_id, fields in hostile_entries(markers).items() if isinstance(fields, dict)}
    for job_id, fields in hostile.items():
        write_entry(redis_conn, job_id, fields)
        redis_conn.rpush("rq:queue:default", job_id)
    run_worker()
    index = list(settings.RQ_QUEUES).index("default")
    loaded = failable(hostile)

    assert admin_client.get(f"/admin/rq/queues/{index}/failed/").status_code == 200
    registry = django_rq.get_queue("default").failed_job_registry
    for job_id in loaded:
        assert admin_client.get(f"/admin/rq/queues/{index}/{job_id}/").status_code == 200, job_id
        # django-rq's requeue is refused at the door (jobs.rq_dashboard); someone with RQ's own
        # API can still requeue, and the worker refuses the job again.
        assert admin_client.post(f"/admin/rq/queues/{index}/{job_id}/requeue/").status_code == 403, job_id
        registry.requeue(job_id)
    run_worker()

    assert sorted(path.name for path in markers.iterdir()) == []
    assert TARGET not in sys.modules
    # Refused again, all but the one whose only fault was a status RQ could not read: marked
    # failed, it became the runner with an id no run has, which the runner skips.
    unreadable_status = {job_id for job_id, fields in hostile.items() if fields.get("status") == "bogus"}
    failed = {member.decode() for member in redis_conn.zrange("rq:failed:default", 0, -1)}
    assert failed == loaded - unreadable_status
    assert list(JobRun.objects.all()) == []
