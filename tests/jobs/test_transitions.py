"""Status writes name the attempt they belong to: a stale attempt's report changes nothing.

One table of cases drives both implementations of each transition, the PostgreSQL
statement (jobs/hotpath.py) and the ORM update (jobs/services.py), so they cannot
drift apart again. On SQLite only the ORM path exists and runs.
"""

import pytest
from django.db import connection

from jobs import enqueue, hotpath, services
from jobs.models import JobRun
from jobs.runner import Outcome, record

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ["sql", "orm"] if connection.vendor == "postgresql" else ["orm"]


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    """Run the test once through the SQL fast path (PostgreSQL only) and once through the ORM."""
    if request.param == "orm":
        monkeypatch.setattr(hotpath, "available", lambda: False)
    else:
        assert hotpath.available()
    return request.param


def claimed(worker="w1") -> JobRun:
    run = enqueue("jobs.ping", {"message": "hi"})
    return services.job_run_mark_running(run.pk, worker)


def stale_then_reclaimed():
    """Attempt 1 is declared lost (retrying), then attempt 2 claims the run; attempt 1 is stale."""
    first = claimed("w1")
    assert services.job_run_mark_lost(first.pk, reason="worker lost (w1)")
    return first


# (what the stale attempt reports, via record())
OUTCOMES = {
    "completed": Outcome("completed", result={"ok": True}),
    "failed": Outcome("failed", error="boom", error_type="RuntimeError"),
    "permanent": Outcome("failed", error="bad key", error_type="PermanentJobError", permanent=True),
    "cancelled": Outcome("cancelled", error="handler stopped"),
}


@pytest.mark.parametrize("reported", list(OUTCOMES))
def test_a_stale_attempt_after_mark_lost_changes_nothing_and_is_recorded(path, reported):
    # The reproduction: claim, mark lost (-> retrying), then the old attempt reports.
    first = stale_then_reclaimed()
    before = JobRun.objects.get(pk=first.pk)
    assert (before.status, before.attempt) == ("retrying", 1)

    record(first, OUTCOMES[reported], "w1")

    after = JobRun.objects.get(pk=first.pk)
    assert (after.status, after.attempt, after.next_attempt_at) == ("retrying", 1, before.next_attempt_at)
    assert after.cancel_reason == "" and after.result is None
    stale = after.events.filter(message__startswith="stale report").get()
    assert stale.attempt == 1 and f"attempt 1 reported {OUTCOMES[reported].status}" in stale.message


@pytest.mark.parametrize("reported", list(OUTCOMES))
def test_a_stale_attempt_cannot_touch_the_next_running_attempt(path, reported):
    first = stale_then_reclaimed()
    JobRun.objects.filter(pk=first.pk).update(next_attempt_at=None)
    second = services.job_run_mark_running(first.pk, "w2")
    assert (second.status, second.attempt) == ("running", 2)

    record(first, OUTCOMES[reported], "w1")

    after = JobRun.objects.get(pk=first.pk)
    assert (after.status, after.attempt, after.worker_name) == ("running", 2, "w2")
    # The live attempt still finishes normally.
    record(second, Outcome("completed", result={"n": 2}), "w2")
    after.refresh_from_db()
    assert (after.status, after.result) == ("completed", {"n": 2})


# The current attempt's reports: (outcome, cancel requested first?) -> status afterwards.
CURRENT = [
    ("completed", False, "completed"),
    ("completed", True, "cancelled"),  # the handler saw ctx.cancelled and returned early
    ("failed", False, "retrying"),
    ("permanent", False, "failed"),
    ("cancelled", False, "cancelled"),
    ("cancelled", True, "cancelled"),
]


@pytest.mark.parametrize(("reported", "cancel_first", "expected"), CURRENT)
def test_the_current_attempt_reports_as_before(path, reported, cancel_first, expected):
    run = claimed()
    if cancel_first:
        services.job_run_cancel(run, reason="operator stop")
    record(run, OUTCOMES[reported], "w1")
    run.refresh_from_db()
    assert run.status == expected
    assert run.events.order_by("-at", "-id").first().status == expected
    assert not run.events.filter(message__startswith="stale report").exists()
    if cancel_first:
        assert run.cancel_reason == "operator stop"


def test_claim_starts_the_next_attempt_once(path):
    run = enqueue("jobs.ping", {"message": "hi"})
    first = services.job_run_mark_running(run.pk, "w1")
    assert (first.status, first.attempt, first.worker_name) == ("running", 1, "w1")
    assert services.job_run_mark_running(run.pk, "w2") is None  # running is not startable
    assert list(first.events.values_list("status", "attempt")) == [("pending", 0), ("queued", 0), ("running", 1)]


def test_mark_lost_names_the_attempt(path):
    first = claimed()
    assert not services.job_run_mark_lost(first.pk, reason="late", attempt=first.attempt + 1)
    assert JobRun.objects.get(pk=first.pk).status == "running"
    assert services.job_run_mark_lost(first.pk, reason="gone", attempt=first.attempt)
    assert JobRun.objects.get(pk=first.pk).status == "retrying"
