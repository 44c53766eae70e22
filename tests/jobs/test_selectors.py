from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from jobs import enqueue
from jobs.selectors import (
    job_run_counts_by_status,
    job_run_counts_by_type,
    job_run_failure_rate,
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
