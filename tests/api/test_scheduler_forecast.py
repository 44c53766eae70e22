"""GET /api/v1/scheduler/forecast: the load forecast for staff who may view job runs."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from jobs.forecast import forecast_brute_force
from jobs.models import PeriodicJob, Schedule, SchedulerConfig
from tests.api.conftest import error_of
from tests.factories import SubscriptionFactory, UserFactory

# These count the schedules they make: the built-in jobs (migration 0006) would add their own.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_builtin_jobs")]
URL = "/api/v1/scheduler/forecast"
NOW = dt.datetime(2026, 10, 24, 12, 20, tzinfo=dt.UTC)  # London falls back the next night


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def schedules():
    config = SchedulerConfig.objects.get(tier="premium", job_type="darkwatch.scan")
    Schedule.objects.create(
        subscription=SubscriptionFactory(timezone="Europe/London"),
        config=config,
        cron_expression="30 1 * * *",
        timezone="Europe/London",
        next_run_at=timezone.now(),
    )
    job = PeriodicJob.objects.create(name="prune", job_type="jobs.prune", cron_expression="*/30 * * * *")
    Schedule.objects.create(periodic_job=job, cron_expression="*/30 * * * *", next_run_at=timezone.now())
    return [("30 1 * * *", "Europe/London", "darkwatch.scan"), ("*/30 * * * *", "UTC", "jobs.prune")]


def test_staff_get_runs_per_utc_hour_per_job_type_with_totals_and_peak(api, staff, schedules):
    body = api.as_user(staff).get(URL).json()

    start = NOW.replace(minute=0)
    expected = forecast_brute_force(schedules, start=start, hours=168)
    assert body["start"] == "2026-10-24T12:00:00Z" and body["hours"] == 168 and len(body["buckets"]) == 168
    assert body["job_types"] == ["darkwatch.scan", "jobs.prune"]
    for name, counts in expected.items():
        assert [bucket["by_job_type"].get(name, 0) for bucket in body["buckets"]] == counts
    assert body["totals"] == {"darkwatch.scan": 7, "jobs.prune": 168 * 2}
    assert body["total"] == sum(bucket["total"] for bucket in body["buckets"]) == 7 + 336
    # 01:30 BST on the 25th is 00:30 UTC (it runs once, not again at 01:30 GMT); 01:30 GMT after that.
    assert body["peak"] == {"hour": "2026-10-25T00:00:00Z", "runs": 3}
    assert body["buckets"][12]["by_job_type"] == {"darkwatch.scan": 1, "jobs.prune": 2}
    assert (body["schedules"], body["unreadable"]) == (2, 0)


def test_hours_and_job_type_narrow_it(api, staff, schedules):
    body = api.as_user(staff).get(URL, {"hours": 3, "job_type": "jobs.prune"}).json()
    assert [bucket["total"] for bucket in body["buckets"]] == [2, 2, 2]
    assert body["job_types"] == ["jobs.prune"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"hours": 0}, "hours"),
        ({"hours": 169}, "hours"),
        ({"hours": "a week"}, "hours"),
        ({"hours": "9" * 40}, "hours"),
        ({"job_type": "no.such"}, "job_type"),
        ({"job_type": "x" * 101}, "job_type"),
        ({"job_type": "a\x00b"}, "job_type"),
    ],
)
def test_bad_parameters_are_a_400_at_their_field(api, staff, query, field):
    response = api.as_user(staff).get(URL, query)
    assert response.status_code == 400
    assert field in error_of(response)["fields"]


def test_customers_and_anonymous_callers_are_refused_as_for_the_stats(api, alice, schedules):
    assert api.get(URL).status_code == 401
    response = api.as_user(alice).get(URL)
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"
    staff_without_view = UserFactory(is_staff=True)
    assert api.as_user(staff_without_view).get(URL).status_code == 403


def test_the_forecast_is_in_the_openapi_schema(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/scheduler/forecast"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} == {"hours", "job_type"}
    assert {"200", "400", "401", "403"} <= set(operation["responses"])
