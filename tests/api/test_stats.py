import datetime as dt
import math

import pytest
import time_machine
from prometheus_client.parser import text_string_to_metric_families

from jobs.models import JobRun
from jobs.scheduling import scheduler_heartbeat_write
from tests.api.conftest import error_of
from tests.api.factories import JobRunFactory

pytestmark = pytest.mark.django_db
Status = JobRun.Status
START = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def clock():
    """Half an hour after START: runs finished at START are inside every window (1 h, 24 h)."""
    with time_machine.travel(START + dt.timedelta(minutes=30), tick=False) as traveller:
        yield traveller


def finished(job_type: str, status: str, seconds: float) -> JobRun:
    return JobRunFactory(
        job_type=job_type,
        status=status,
        started_at=START,
        finished_at=START + dt.timedelta(seconds=seconds),
    )


def metrics(client) -> dict:
    response = client.get("/api/v1/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def samples(family, name=None) -> dict:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for sample in family.samples
        if name is None or sample.name == name
    }


def test_stats_and_metrics_are_staff_only(api, alice):
    for path in ("/api/v1/stats/", "/api/v1/metrics"):
        assert error_of(api.as_user(alice).get(path))["code"] == "permission_denied"
        api.credentials()
        assert api.get(path).status_code == 401


def test_metrics_parse_and_say_what_the_tables_and_redis_hold(api, staff, redis_conn):
    for seconds in (0.05, 2, 2, 40):
        finished("jobs.ping", Status.COMPLETED, seconds)
    finished("darkwatch.scan", Status.FAILED, 600)
    JobRunFactory(status=Status.QUEUED, enqueued_at=START + dt.timedelta(minutes=30, seconds=-90))
    redis_conn.rpush("rq:queue:high", "a", "b", "c")
    scheduler_heartbeat_write("scheduler-1", last_pass_seconds=0.1, fired=0)

    families = metrics(api.as_user(staff))

    runs = samples(families["kordant_job_runs"])
    assert runs[(("job_type", "jobs.ping"), ("status", "completed"))] == 4
    assert runs[(("job_type", "darkwatch.scan"), ("status", "failed"))] == 1
    assert runs[(("job_type", "jobs.ping"), ("status", "queued"))] == 1

    durations = families["kordant_job_run_duration_seconds"]
    assert durations.type == "histogram"
    buckets = {
        sample.labels["le"]: sample.value
        for sample in durations.samples
        if sample.name.endswith("_bucket") and sample.labels["job_type"] == "jobs.ping"
    }
    assert (buckets["0.1"], buckets["1.0"], buckets["5.0"], buckets["60.0"], buckets["+Inf"]) == (1, 1, 3, 4, 4)
    sums = samples(durations, "kordant_job_run_duration_seconds_sum")
    assert sums[(("job_type", "jobs.ping"),)] == pytest.approx(44.05)

    assert samples(families["kordant_queue_depth"])[(("queue", "high"),)] == 3
    ratios = samples(families["kordant_job_failure_ratio"])
    assert (ratios[(("job_type", "darkwatch.scan"),)], ratios[(("job_type", "jobs.ping"),)]) == (1.0, 0.0)
    assert ratios[(("job_type", "*"),)] == pytest.approx(1 / 5)
    assert samples(families["kordant_scheduler_heartbeat_age_seconds"])[()] == 0
    assert samples(families["kordant_oldest_queued_seconds"])[()] == 90
    assert samples(families["kordant_redis_up"])[()] == 1


def test_metrics_are_read_at_scrape_time_not_counted_in_the_process(api, staff):
    client = api.as_user(staff)
    assert samples(metrics(client)["kordant_job_runs"]) == {}
    finished("jobs.ping", Status.COMPLETED, 1)
    first = samples(metrics(client)["kordant_job_runs"])
    # A row written by anyone (another process, a worker) shows in the next scrape.
    JobRun.objects.update(status=Status.FAILED)
    second = samples(metrics(client)["kordant_job_runs"])
    assert first == {(("job_type", "jobs.ping"), ("status", "completed")): 1}
    assert second == {(("job_type", "jobs.ping"), ("status", "failed")): 1}


def test_no_scheduler_heartbeat_is_an_infinite_age(api, staff):
    age = samples(metrics(api.as_user(staff))["kordant_scheduler_heartbeat_age_seconds"])[()]
    assert math.isinf(age)


def test_stats_are_the_dashboard_numbers(api, staff, redis_conn):
    finished("jobs.ping", Status.COMPLETED, 3)
    finished("jobs.ping", Status.FAILED, 5)
    redis_conn.rpush("rq:queue:low", "x")
    body = api.as_user(staff).get("/api/v1/stats/").json()
    assert body["runs_by_status"]["completed"] == 1
    assert body["runs_by_status"]["failed"] == 1
    assert body["runs_by_type_24h"]["jobs.ping"] == {"completed": 1, "failed": 1}
    assert body["queue_depths"]["low"] == 1
    assert body["scheduler"] is None
    assert len(body["runs_per_hour"]) == 24
    assert body["duration_percentiles_24h"]["jobs.ping"] == {"p50": 4.0, "p95": pytest.approx(4.9)}
    assert body["failure_rate_1h"]["*"] == 0.5
    assert body["oldest_queued_seconds"] is None
