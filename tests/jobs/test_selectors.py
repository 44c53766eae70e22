from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from jobs import enqueue
from jobs.models import JobRun
from jobs.selectors import (
    job_run_counts_by_status,
    job_run_counts_by_type,
    job_run_duration_percentiles,
    job_run_failure_rate,
    job_runs_per_hour,
    oldest_queued_age,
    queue_depths,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_status_numbers_reflect_what_ran(run_worker):
    enqueue("jobs.ping", {"message": "a"})
    enqueue("jobs.ping", {"message": "b"})
    enqueue("tests.permanent", {})
    run_worker()
    enqueue("jobs.ping", {"message": "waiting"}, priority="low")
    enqueue("jobs.ping", {"message": "later"}, delay=timedelta(hours=1))

    counts = job_run_counts_by_status(since=timedelta(hours=24))
    assert (counts["completed"], counts["failed"], counts["queued"], counts["running"]) == (2, 1, 2, 0)
    assert job_run_counts_by_type()["jobs.ping"] == {"completed": 2, "queued": 2}
    rates = job_run_failure_rate()
    assert rates["tests.permanent"] == 1.0 and rates["jobs.ping"] == 0.0
    assert rates["*"] == pytest.approx(1 / 3)
    assert queue_depths() == {"critical": 0, "high": 0, "default": 0, "low": 1, "delayed": 1}


def test_oldest_queued_age_ignores_runs_not_yet_due():
    assert oldest_queued_age() is None
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        enqueue("jobs.ping", {"message": "x"})
        enqueue("jobs.ping", {"message": "y"}, delay=timedelta(hours=1))
        clock.shift(timedelta(minutes=5))
        assert oldest_queued_age() == timedelta(minutes=5)


def _finished_run(job_type: str, seconds: float, *, status="completed", finished_at=None):
    finished_at = finished_at or timezone.now()
    return JobRun.objects.create(
        job_type=job_type,
        queue="default",
        timeout=60,
        status=status,
        started_at=finished_at - timedelta(seconds=seconds),
        finished_at=finished_at,
    )


def test_duration_percentiles_per_type_over_the_window():
    for seconds in range(1, 11):  # 1..10 s
        _finished_run("jobs.ping", seconds)
    _finished_run("tests.permanent", 4, status="failed")
    _finished_run("jobs.ping", 500, finished_at=timezone.now() - timedelta(days=2))  # outside the window
    JobRun.objects.create(job_type="jobs.ping", queue="default", timeout=60, status="queued")

    percentiles = job_run_duration_percentiles(since=timedelta(hours=24))

    assert percentiles["jobs.ping"]["p50"] == pytest.approx(5.5)
    assert percentiles["jobs.ping"]["p95"] == pytest.approx(9.55)
    assert percentiles["tests.permanent"] == {"p50": pytest.approx(4), "p95": pytest.approx(4)}


def test_runs_per_hour_has_every_hour_oldest_first():
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    with time_machine.travel(now, tick=False):
        for hours_ago, status in ((0, "completed"), (0, "failed"), (3, "failed"), (30, "completed")):
            run = JobRun.objects.create(job_type="jobs.ping", queue="default", timeout=60, status=status)
            JobRun.objects.filter(pk=run.pk).update(created_at=now - timedelta(hours=hours_ago))

        buckets = job_runs_per_hour(hours=24)

    assert len(buckets) == 24
    assert buckets[-1] == {"hour": now.replace(minute=0), "runs": 2, "failed": 1}
    assert buckets[-4] == {"hour": now.replace(minute=0) - timedelta(hours=3), "runs": 1, "failed": 1}
    assert sum(bucket["runs"] for bucket in buckets) == 3  # the 30-hour-old run is outside


def test_the_dashboard_agrees_with_the_single_purpose_selectors(run_worker):
    from jobs.selectors import jobs_dashboard

    start = timezone.now().replace(minute=30)
    with time_machine.travel(start - timedelta(hours=25), tick=False):
        enqueue("jobs.ping", {"message": "too old to count"})
    with time_machine.travel(start - timedelta(hours=3), tick=False):
        enqueue("tests.permanent", {})
        enqueue("jobs.ping", {"message": "three hours ago"})
    enqueue("jobs.ping", {"message": "now"})
    run_worker()
    enqueue("jobs.ping", {"message": "waiting"}, priority="low")

    data = jobs_dashboard()
    assert data["counts"] == job_run_counts_by_status(since=timedelta(hours=24))
    assert data["total"] == 4
    assert [(b["runs"], b["failed"]) for b in data["per_hour"]] == [
        (b["runs"], b["failed"]) for b in job_runs_per_hour(hours=24)
    ]
    assert data["per_hour"][-4]["failed"] == 1 and data["per_hour"][-1]["runs"] == 2
    by_type = {row["job_type"]: row for row in data["types"]}
    assert by_type["tests.permanent"]["failure_rate"] == 1.0
    assert by_type["jobs.ping"]["failure_rate"] == 0.0 and by_type["jobs.ping"]["runs"] == 3
    assert data["failure_rate"] == pytest.approx(1 / 3)
    assert {q["name"]: q["depth"] for q in data["queues"]}["low"] == 1
