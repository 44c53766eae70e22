"""The per-broker rate limit with real `manage.py rqworker` processes: it lives in Redis, not in a worker."""

from collections import Counter

import pytest
from django.utils import timezone

from jobs import enqueue
from jobs.models import JobRun
from scanners.removebrokers.models import RemovalRequest
from scanners.removebrokers.services import removal_requests_create
from tests.factories import SubscriptionFactory
from tests.jobs.test_worker import wait_for_status
from tests.scanners.removebrokers.conftest import PERSON

pytestmark = pytest.mark.django_db(transaction=True)
Status = RemovalRequest.Status


def file_requests(count: int) -> None:
    for _ in range(count):
        removal_requests_create(SubscriptionFactory(), PERSON)


def test_a_second_worker_process_sees_the_slots_the_first_one_took(broker_api, worker_process):
    broker_api.broker(rate_limit_per_minute=5)
    file_requests(8)  # enqueues one pass
    first = worker_process("--burst")
    assert first.wait(60) == 0, first.stdout.read().decode()
    assert len(broker_api.posts) == 5

    file_requests(4)  # due now, but the broker's minute is used up; enqueues a second pass
    second = worker_process("--burst")
    assert second.wait(60) == 0, second.stdout.read().decode()

    runs = JobRun.objects.filter(job_type="removebrokers.process").order_by("created_at")
    assert [run.status for run in runs] == [JobRun.Status.COMPLETED] * 2
    started_by = [run.events.get(status=JobRun.Status.RUNNING).worker for run in runs]
    assert started_by[0] != started_by[1]
    assert runs[1].result["rate_limited"] >= 1
    assert len(broker_api.posts) == 5
    assert RemovalRequest.objects.filter(status=Status.SUBMITTED).count() == 5
    waiting = RemovalRequest.objects.filter(status=Status.PENDING)
    assert waiting.count() == 7
    assert all(row.next_attempt_at > timezone.now() for row in waiting)


def test_two_workers_passing_at_once_submit_each_request_once_within_the_limit(broker_api, worker_process):
    broker_api.broker(rate_limit_per_minute=20)
    file_requests(120)  # more than one claim batch, so both passes find work
    runs = [JobRun.objects.get(job_type="removebrokers.process"), enqueue("removebrokers.process", {})]
    workers = [worker_process(), worker_process()]

    for run in runs:
        try:
            wait_for_status(run, {JobRun.Status.COMPLETED, JobRun.Status.FAILED}, timeout=60)
        except AssertionError:
            raise AssertionError(run.error + run.traceback) from None
    for worker in workers:
        worker.terminate()

    assert {run.status for run in runs} == {JobRun.Status.COMPLETED}
    posted = Counter(post["request_id"] for post in broker_api.posts)
    assert len(broker_api.posts) == 20
    assert max(posted.values()) == 1
    assert RemovalRequest.objects.filter(status=Status.SUBMITTED).count() == 20
    # Those a pass found out of slots wait for one to free; the rest were never claimed.
    assert RemovalRequest.objects.filter(status=Status.PENDING).count() == 100
    assert RemovalRequest.objects.filter(next_attempt_at__gt=timezone.now()).count() >= 1
