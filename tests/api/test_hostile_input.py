"""Issue 16 items 6, 7 and 12: what an attacker sends the API is a 4xx in the error shape, never a 500.

The endpoints and their query parameters are read from the live OpenAPI schema, so an endpoint
added later is swept too. Run these on PostgreSQL as well: it refuses what SQLite stores
(NUL characters, lone surrogates, offsets past ±15:59).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.apps import apps
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

from jobs.models import JobRun, SchedulerConfig
from jobs.periodic import periodic_job_create
from reports.models import Report
from tests.api.conftest import error_of
from tests.api.factories import (
    AlertFactory,
    AnalysisJobFactory,
    JobRunFactory,
    RemovalRequestFactory,
    ReportFactory,
    ScheduleFactory,
    SchedulerConfigFactory,
    TitleChangeFactory,
)

pytestmark = pytest.mark.django_db
WRITES = ("post", "put", "patch")


def api_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def write_operations() -> list[tuple[str, str, bool]]:
    """(path, method, takes a body) for every write the schema lists."""
    return [
        (path, method, "requestBody" in operation)
        for path, operations in api_schema()["paths"].items()
        for method, operation in operations.items()
        if method in WRITES
    ]


def list_operations() -> list[tuple[str, list[dict]]]:
    """(path, query parameters) for every list the schema lists."""
    return [
        (path, [p for p in operations["get"].get("parameters", []) if p["in"] == "query"])
        for path, operations in api_schema()["paths"].items()
        if "get" in operations and "{" not in path
    ]


def row_counts() -> dict[str, int]:
    """How many rows each table has, and which runs are in which state: a 4xx changes none of it."""
    counts = {model._meta.label: model._default_manager.count() for model in apps.get_models() if model._meta.managed}
    counts["runs by status"] = sorted(JobRun.objects.values_list("pk", "status"))
    counts["configs"] = sorted(SchedulerConfig.objects.values_list("pk", "frequency", "enabled"))
    return counts


@pytest.fixture
def lived_in(alice, bob):
    """Objects of every kind, alice's and bob's, in the states lists and actions meet in real life."""
    mine, theirs = alice.subscriptions.get(), bob.subscriptions.get()
    objects = {}
    for owner, subscription in (("alice", mine), ("bob", theirs)):
        failed = JobRunFactory(subscription=subscription, status=JobRun.Status.FAILED, error="boom")
        JobRunFactory(subscription=subscription, status=JobRun.Status.COMPLETED, finished_at=dt.datetime.now(dt.UTC))
        JobRunFactory(subscription=subscription, status=JobRun.Status.QUEUED)
        objects[owner] = {
            "jobs": failed.pk,
            "job-types": "jobs.ping",
            "schedules": ScheduleFactory(subscription=subscription).pk,
            "subscriptions": subscription.pk,
            "alerts": AlertFactory(subscription=subscription).pk,
            "title-changes": TitleChangeFactory(property__subscription=subscription).pk,
            "removal-requests": RemovalRequestFactory(subscription=subscription).pk,
            "voice-analyses": AnalysisJobFactory(subscription=subscription).pk,
            "reports": ReportFactory(subscription=subscription).pk,
            "scheduler-configs": SchedulerConfigFactory(tier=subscription.tier).pk,
            "periodic-jobs": periodic_job_create(
                name=f"{owner}'s weekly report",
                owner=subscription.user,
                job_type="reports.recent",
                payload={"subscription_id": subscription.pk},
                cron_expression="0 9 * * 1",
            ).pk,
            **_webhook_objects(subscription.user),
        }
    return objects


def _webhook_objects(owner) -> dict:
    """An endpoint, a failed event to it and the attempt that failed (the webhook delivery log)."""
    from notifications.models import Notification, WebhookDelivery, WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(owner=owner, url="http://127.0.0.1:9/hooks", kinds=["alert.*"])
    event = Notification.objects.create(
        recipient=owner,
        channel="webhook",
        kind="reminder",
        context={"message": "hi", "subject": "s"},
        webhook_endpoint=endpoint,
        status="failed",
        attempts=1,
    )
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, notification=event, attempt=1, status_code=500)
    return {"webhook-endpoints": endpoint.pk, "webhook-events": event.pk, "webhook-deliveries": delivery.pk}


def concrete(path: str, ids: dict) -> str:
    if "{" not in path:
        return path
    resource = path.removeprefix("/api/v1/").split("/")[0]
    assert resource in ids, f"add a {resource!r} object to the lived_in fixture so the sweep reaches it"
    return path.replace("{id}", str(ids[resource])).replace("{name}", str(ids[resource]))


def forget_throttles(redis_conn):
    # Each hostile request is judged on its own, not turned away by the previous ones' count.
    for key in redis_conn.scan_iter("*throttle*"):
        redis_conn.delete(key)


DEEP = "[" * 100_000 + "]" * 100_000  # about 200 KB: RecursionError in json.loads
HOSTILE_BODIES = {
    "nested 100,000 deep": DEEP.encode(),
    "nested 100,000 deep in a field": ('{"payload": {"message": ' + DEEP + '}, "username": ' + DEEP + "}").encode(),
    "NUL in a string": b'{"job_type": "jobs.ping", "payload": {"message": "a\\u0000b"}, "username": "a\\u0000", '
    b'"reason": "x\\u0000", "tier": "basic", "period_start": "2026-10-01"}',
    "NUL in a key": b'{"job_type": "jobs.ping", "payload": {"mess\\u0000age": "hi"}}',
    "lone surrogate": b'{"job_type": "jobs.ping", "payload": {"message": "a\\ud800b"}, "username": "\\udfff"}',
    "NaN": b'{"job_type": "jobs.ping", "payload": {"message": "hi", "n": NaN}, "delay_seconds": NaN}',
    "Infinity": b'{"job_type": "jobs.ping", "payload": {"n": 1e400}, "delay_seconds": Infinity}',
    "integer past 64 bits": b'{"job_type": "jobs.ping", "payload": {"n": 99999999999999999999999}, "subscription": '
    b"99999999999999999999999}",
    "invalid UTF-8": b'{"job_type": "jobs.ping", "payload": {"message": "\xff\xfe"}}',
    "not JSON": b"{'job_type': 'jobs.ping'",
}


@pytest.mark.parametrize("body_name", HOSTILE_BODIES)
@pytest.mark.parametrize("who", ["staff", "alice", "anonymous"])
def test_every_write_endpoint_refuses_a_hostile_body_in_the_error_shape(
    api, alice, bob, staff, lived_in, redis_conn, who, body_name
):
    client = {"staff": lambda: api.as_user(staff), "alice": lambda: api.as_user(alice), "anonymous": lambda: api}[who]()
    body = HOSTILE_BODIES[body_name]
    before = row_counts()
    operations = write_operations()
    assert len(operations) >= 10  # the schema lists the writes; an empty sweep would prove nothing
    for path, method, takes_body in operations:
        forget_throttles(redis_conn)
        url = concrete(path, lived_in["alice"])
        response = getattr(client, method)(url, body, content_type="application/json")
        assert response.status_code < 500, (method, url, response.status_code)
        if takes_body or response.status_code >= 400:
            assert 400 <= response.status_code < 500, (method, url, response.status_code, response.content[:300])
            error_of(response)
        if response.status_code >= 400:
            assert row_counts() == before, (method, url)
        else:
            before = row_counts()  # an action that takes no body did its work; the next one starts from here


def test_a_body_over_the_size_limit_is_a_413_before_it_is_parsed(api, staff, redis_conn):
    huge = b'{"job_type": "jobs.ping", "payload": {"message": "' + b"x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + b'"}}'
    response = api.as_user(staff).post("/api/v1/jobs/", huge, content_type="application/json")
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"
    assert not JobRun.objects.exists()


def test_a_form_body_is_cleaned_like_a_json_one(api, staff):
    response = api.post(
        "/api/v1/auth/token/", "username=a%00b&password=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400, response.content
    assert error_of(response)["code"] == "parse_error"


def test_a_nul_in_an_enqueued_payload_is_a_400_naming_the_problem(api, staff):
    # Issue 16 item 6: PostgreSQL's DataError ("unsupported Unicode escape sequence") was a 500.
    body = b'{"job_type": "jobs.ping", "payload": {"message": "a\\u0000b"}}'
    response = api.as_user(staff).post("/api/v1/jobs/", body, content_type="application/json")
    assert response.status_code == 400
    assert "NUL" in error_of(response)["message"]
    assert not JobRun.objects.exists()


# --- query parameters -----------------------------------------------------------------------

HOSTILE_VALUES = [
    "\x00",
    "a\x00b",
    "2026-01-01T00:00:00+16:00",  # PostgreSQL refuses the offset: was a 500
    "2026-01-01T00:00:00-15:59",
    "0001-01-01T00:00:00+14:00",  # to UTC: before year 1
    "9999-12-31T23:59:59-14:00",  # to UTC: after year 9999
    "99999999999999999999999",  # past bigint
    "-1",
    "1.5",
    "1e400",
    "null",
    "x" * 5000,
]


def test_every_query_parameter_of_every_list_refuses_hostile_values_in_the_error_shape(
    api, staff, lived_in, redis_conn
):
    client = api.as_user(staff)
    swept = 0
    for path, parameters in list_operations():
        for parameter in parameters:
            for value in HOSTILE_VALUES:
                forget_throttles(redis_conn)
                response = client.get(path, {parameter["name"]: value})
                assert response.status_code < 500, (path, parameter["name"], value)
                if response.status_code >= 400:
                    error_of(response)
                swept += 1
    assert swept > 200


@pytest.mark.parametrize("offset", ["+16:00", "-16:00", "+14:01", "+23:59"])
def test_a_datetime_filter_with_an_offset_no_place_has_is_a_400(api, staff, offset):
    response = api.as_user(staff).get("/api/v1/jobs/", {"finished_after": f"2026-01-01T00:00:00{offset}"})
    assert response.status_code == 400, response.content
    assert "finished_after" in error_of(response)["fields"]


def test_a_datetime_filter_compares_instants_whatever_the_offset(api, staff):
    run = JobRunFactory(status=JobRun.Status.COMPLETED, finished_at=dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC))
    client = api.as_user(staff)
    # 2026-01-02T01:00+14:00 is 2026-01-01T11:00Z, an hour before the run finished.
    earlier = client.get("/api/v1/jobs/", {"finished_after": "2026-01-02T01:00:00+14:00"}).json()["results"]
    assert [row["id"] for row in earlier] == [str(run.pk)]
    assert client.get("/api/v1/jobs/", {"finished_after": "2026-01-02T03:00:00+14:00"}).json()["results"] == []


@pytest.mark.parametrize(
    "path",
    ["/api/v1/job-types/jobs.ping%0A/", "/api/v1/job-types/%0A", "/api/v1/job-types/jobs.ping/%0A", "/api/v1/%0A/x"],
)
def test_a_path_with_a_newline_is_a_404_in_the_error_shape(api, staff, path):
    # Percent-encoded: the test client (urllib) drops a raw newline, a WSGI server hands it on decoded.
    response = api.as_user(staff).get(path)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


# --- item 7: someone else's object looks exactly like a missing one, in filters too ----------


def test_filtering_by_someone_elses_id_answers_like_a_missing_id_on_every_list(api, alice, lived_in):
    client = api.as_user(alice)
    missing_id = 2**31 - 1
    compared = 0
    for path, parameters in list_operations():
        for parameter in parameters:
            name = parameter["name"]
            if parameter["schema"].get("type") != "integer" or name in ("page", "page_size", "hours"):
                continue
            resource = {
                "subscription": "subscriptions",
                "schedule": "schedules",
                "endpoint": "webhook-endpoints",
                "event": "webhook-events",
            }.get(name)
            assert resource, f"{path}?{name}: say which of bob's objects this id filter names"
            theirs = client.get(path, {name: lived_in["bob"][resource]})
            missing = client.get(path, {name: missing_id})
            assert (theirs.status_code, theirs.json()) == (missing.status_code, missing.json()), (path, name)
            assert theirs.status_code == 200 and theirs.json()["results"] == [], (path, name)
            compared += 1
    assert compared >= 8  # every list that filters by subscription or schedule


def test_filtering_by_ones_own_subscription_still_filters(api, alice, lived_in):
    response = api.as_user(alice).get("/api/v1/reports/", {"subscription": lived_in["alice"]["subscriptions"]})
    assert [row["id"] for row in response.json()["results"]] == [lived_in["alice"]["reports"]]


# --- item 12: the schema and the behaviour agree ----------------------------------------------


@pytest.mark.parametrize("value", ["null", "0", "-3", "abc", "1.5", "\x00"])
def test_a_page_size_that_is_not_a_positive_integer_is_a_400(api, staff, value):
    response = api.as_user(staff).get("/api/v1/jobs/", {"page_size": value})
    assert response.status_code == 400, response.content
    assert "page_size" in error_of(response)["fields"]


def test_page_size_is_documented_as_the_positive_integer_it_is(api):
    parameters = api_schema()["paths"]["/api/v1/jobs/"]["get"]["parameters"]
    page_size = next(p for p in parameters if p["name"] == "page_size")
    assert page_size["schema"]["type"] == "integer" and page_size["schema"]["minimum"] == 1


@pytest.mark.parametrize("run_at", ["9999-12-31T00:00:00Z", "2030-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00"])
def test_run_at_is_bounded_like_delay_seconds(api, staff, run_at):
    response = api.as_user(staff).post(
        "/api/v1/jobs/", {"job_type": "jobs.ping", "payload": {"message": "hi"}, "run_at": run_at}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "run_at" in error_of(response)["fields"]
    assert not JobRun.objects.exists()


def test_run_at_within_a_year_is_accepted(api, staff):
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=365)).isoformat()
    response = api.as_user(staff).post(
        "/api/v1/jobs/", {"job_type": "jobs.ping", "payload": {"message": "hi"}, "run_at": soon}, format="json"
    )
    assert response.status_code == 201, response.content


def test_a_reports_download_url_is_an_absolute_url(api, alice, lived_in):
    Report.objects.filter(pk=lived_in["alice"]["reports"]).update(status=Report.Status.READY, file="reports/x.pdf")
    row = api.as_user(alice).get("/api/v1/reports/").json()["results"][0]
    assert row["download_url"] == f"http://testserver/api/v1/reports/{row['id']}/download/"


def test_the_hostile_bodies_are_what_they_say(api):
    # The sweep above is only as good as its inputs: each really is the thing named.
    with pytest.raises(RecursionError):
        json.loads(HOSTILE_BODIES["nested 100,000 deep"])
    assert "\x00" in json.loads(HOSTILE_BODIES["NUL in a string"])["payload"]["message"]
    assert "\ud800" in json.loads(HOSTILE_BODIES["lone surrogate"])["payload"]["message"]
