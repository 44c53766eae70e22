import datetime as dt

import pytest

from jobs.models import JobRun
from tests.api.conftest import error_of, queries_per_page_size
from tests.api.factories import JobEventFactory, JobRunFactory, ScheduleFactory
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db
Status = JobRun.Status


def queued_ids(redis_conn, queue="default") -> list[str]:
    return [value.decode() for value in redis_conn.lrange(f"rq:queue:{queue}", 0, -1)]


# --- who sees what ---------------------------------------------------------------------


def test_a_user_lists_only_runs_of_their_own_subscriptions(api, alice, bob, staff):
    mine = JobRunFactory(subscription=alice.subscriptions.get())
    scheduled_for_me = JobRunFactory(subscription=alice.subscriptions.get(), user=None, trigger="cron")
    JobRunFactory(subscription=bob.subscriptions.get())

    listed = api.as_user(alice).get("/api/v1/jobs/").json()
    assert {row["id"] for row in listed["results"]} == {str(mine.pk), str(scheduled_for_me.pk)}
    assert listed["count"] == 2

    assert api.as_user(staff).get("/api/v1/jobs/").json()["count"] == 3


def test_someone_elses_run_is_not_found_not_forbidden(api, alice, bob):
    theirs = JobRunFactory(subscription=bob.subscriptions.get())
    response = api.as_user(alice).get(f"/api/v1/jobs/{theirs.pk}/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    # The same answer as for a run that never existed.
    missing = api.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000/")
    assert missing.status_code == 404 and missing.json() == response.json()


def test_anonymous_requests_are_refused_with_the_error_shape(api):
    response = api.get("/api/v1/jobs/")
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Token")


# --- detail ------------------------------------------------------------------------------


def test_detail_shows_progress_attempts_result_error_and_events(api, alice):
    run = JobRunFactory(
        subscription=alice.subscriptions.get(),
        status=Status.FAILED,
        attempt=4,
        progress=40,
        progress_message="scanned 2 of 5 items",
        error="ProviderUnavailable: HIBP answered 503\nTraceback line that is not a summary",
        error_type="ProviderUnavailable",
        started_at=dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC),
        finished_at=dt.datetime(2026, 11, 1, 12, 0, 30, tzinfo=dt.UTC),
    )
    JobEventFactory(job_run=run, status=Status.PENDING, message="enqueued (api)")
    JobEventFactory(job_run=run, status=Status.FAILED, attempt=4, message="no retries left")

    body = api.as_user(alice).get(f"/api/v1/jobs/{run.pk}/").json()

    assert body["status"] == "failed"
    assert (body["progress"], body["progress_message"]) == (40, "scanned 2 of 5 items")
    assert (body["attempt"], body["max_attempts"]) == (4, 4)
    assert body["error_summary"] == "ProviderUnavailable: HIBP answered 503"
    assert body["duration_seconds"] == 30
    assert [event["status"] for event in body["events"]] == ["pending", "failed"]
    assert body["events"][1]["message"] == "no retries left"


def test_each_detail_shows_its_own_run_though_fields_are_bound_once(api, staff):
    # The response serializers bind their fields for the first response and reuse them.
    first = JobRunFactory(error="first: broke", started_at=None, finished_at=None)
    JobEventFactory(job_run=first, message="first event")
    second = JobRunFactory(
        error="second: broke too",
        started_at=dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC),
        finished_at=dt.datetime(2026, 11, 1, 12, 0, 5, tzinfo=dt.UTC),
    )

    bodies = [api.as_user(staff).get(f"/api/v1/jobs/{run.pk}/").json() for run in (first, second, first)]

    assert [body["id"] for body in bodies] == [str(first.pk), str(second.pk), str(first.pk)]
    assert [body["error_summary"] for body in bodies] == ["first: broke", "second: broke too", "first: broke"]
    assert [body["duration_seconds"] for body in bodies] == [None, 5, None]
    assert [[event["message"] for event in body["events"]] for body in bodies] == [["first event"], [], ["first event"]]


def test_detail_etag_answers_304_until_the_run_changes(api, alice):
    run = JobRunFactory(subscription=alice.subscriptions.get(), status=Status.RUNNING)
    client = api.as_user(alice)
    first = client.get(f"/api/v1/jobs/{run.pk}/")
    etag = first["ETag"]
    assert first.status_code == 200 and first["Last-Modified"]
    assert first["Cache-Control"] == "private, no-cache"

    unchanged = client.get(f"/api/v1/jobs/{run.pk}/", HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged["ETag"] == etag

    # What a handler's ctx.progress() writes: the next poll gets the new body.
    JobRun.objects.filter(pk=run.pk).update(progress=50, updated_at=run.updated_at + dt.timedelta(seconds=1))
    changed = client.get(f"/api/v1/jobs/{run.pk}/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed.json()["progress"] == 50
    assert changed["ETag"] != etag

    # A new event alone (same updated_at) also changes the tag.
    JobEventFactory(job_run=run, status=Status.RUNNING, message="cancel requested")
    assert client.get(f"/api/v1/jobs/{run.pk}/", HTTP_IF_NONE_MATCH=changed["ETag"]).status_code == 200


def test_another_users_etag_does_not_reveal_their_run(api, alice, bob):
    theirs = JobRunFactory(subscription=bob.subscriptions.get())
    etag = api.as_user(bob).get(f"/api/v1/jobs/{theirs.pk}/")["ETag"]
    assert api.as_user(alice).get(f"/api/v1/jobs/{theirs.pk}/", HTTP_IF_NONE_MATCH=etag).status_code == 404


# --- list: filters, ordering, pagination, query count ------------------------------------


def test_list_filters_by_status_type_trigger_schedule_and_date_range(api, staff):
    schedule = ScheduleFactory()
    old = JobRunFactory(status=Status.COMPLETED, trigger="cron", schedule=schedule)
    JobRun.objects.filter(pk=old.pk).update(created_at=dt.datetime(2026, 1, 10, tzinfo=dt.UTC))
    failed = JobRunFactory(status=Status.FAILED, job_type="jobs.prune", payload={})
    queued = JobRunFactory(status=Status.QUEUED, trigger="manual")
    client = api.as_user(staff)

    def ids(query):
        response = client.get(f"/api/v1/jobs/?{query}")
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["results"]}

    assert ids("status=failed") == {str(failed.pk)}
    assert ids("status=failed&status=queued") == {str(failed.pk), str(queued.pk)}
    assert ids("job_type=jobs.prune") == {str(failed.pk)}
    assert ids("trigger=manual") == {str(queued.pk)}
    assert ids(f"schedule={schedule.pk}") == {str(old.pk)}
    assert ids("created_before=2026-02-01T00:00:00Z") == {str(old.pk)}
    assert ids("created_after=2026-02-01T00:00:00Z") == {str(failed.pk), str(queued.pk)}
    bad = client.get("/api/v1/jobs/?status=exploded")
    assert bad.status_code == 400 and "status" in error_of(bad)["fields"]


def test_list_orders_and_pages(api, staff):
    runs = [JobRunFactory() for _ in range(7)]
    for index, run in enumerate(runs):
        JobRun.objects.filter(pk=run.pk).update(created_at=dt.datetime(2026, 3, 1 + index, tzinfo=dt.UTC))
    client = api.as_user(staff)

    newest_first = client.get("/api/v1/jobs/?page_size=3").json()
    assert newest_first["count"] == 7
    assert [row["id"] for row in newest_first["results"]] == [str(run.pk) for run in runs[::-1][:3]]
    assert newest_first["next"].endswith("page=2&page_size=3")

    oldest_first = client.get("/api/v1/jobs/?ordering=created_at&page_size=3&page=3").json()
    assert [row["id"] for row in oldest_first["results"]] == [str(runs[6].pk)]


@pytest.mark.parametrize("who", ["owner", "staff"])
def test_list_query_count_does_not_grow_with_page_size(api, alice, staff, who):
    subscription = alice.subscriptions.get()
    schedule = ScheduleFactory(subscription=subscription)
    for _ in range(60):
        JobEventFactory(job_run=JobRunFactory(subscription=subscription, schedule=schedule))
    counts = queries_per_page_size(api.as_user(alice if who == "owner" else staff), "/api/v1/jobs/")
    assert counts[5] == counts[50] <= 5, counts  # token+user, count, page; staff: their permissions (2)


# --- enqueue -------------------------------------------------------------------------------


def test_staff_enqueue_writes_the_run_pushes_it_and_a_worker_runs_it(
    api, staff, redis_conn, run_worker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_user(staff).post(
            "/api/v1/jobs/", {"job_type": "jobs.ping", "payload": {"message": "hi"}, "priority": "high"}, format="json"
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["Location"] == f"/api/v1/jobs/{body['id']}/"
    run = JobRun.objects.get(pk=body["id"])
    assert (run.user, run.trigger, run.queue) == (staff, "api", "high")
    assert queued_ids(redis_conn, "high") == [body["id"]]

    run_worker()
    done = api.get(response["Location"]).json()
    assert done["status"] == "completed"
    assert [event["status"] for event in done["events"]][-1] == "completed"


def test_invalid_payload_is_a_400_with_field_errors_and_nothing_is_enqueued(
    api, staff, redis_conn, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_user(staff).post(
            "/api/v1/jobs/", {"job_type": "jobs.ping", "payload": {"message": 3, "extra": True}}, format="json"
        )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "payload_invalid"
    assert set(error["fields"]) == {"payload.message", "payload.extra"}
    assert not JobRun.objects.exists()
    assert redis_conn.keys("rq:*") == []


def test_unknown_job_type_and_bad_options_are_field_errors(api, staff):
    client = api.as_user(staff)
    unknown = client.post("/api/v1/jobs/", {"job_type": "nope.never", "payload": {}}, format="json")
    assert unknown.status_code == 400
    assert error_of(unknown)["code"] == "unknown_job_type"
    assert "job_type" in error_of(unknown)["fields"]

    both = client.post(
        "/api/v1/jobs/",
        {"job_type": "jobs.ping", "payload": {"message": "x"}, "delay_seconds": 5, "run_at": "2030-01-01T00:00:00Z"},
        format="json",
    )
    assert both.status_code == 400 and "run_at" in error_of(both)["fields"]
    assert not JobRun.objects.exists()


def test_only_staff_enqueue_cancel_and_retry(api, alice):
    run = JobRunFactory(subscription=alice.subscriptions.get(), status=Status.FAILED)
    client = api.as_user(alice)
    for path in ("/api/v1/jobs/", f"/api/v1/jobs/{run.pk}/cancel/", f"/api/v1/jobs/{run.pk}/retry/"):
        response = client.post(path, {"job_type": "jobs.ping", "payload": {"message": "x"}}, format="json")
        assert response.status_code == 403, path
        assert error_of(response)["code"] == "permission_denied"
    assert JobRun.objects.get() == run
    assert JobRun.objects.get().status == Status.FAILED


def test_a_dedupe_key_returns_the_active_run_with_200(api, staff):
    client = api.as_user(staff)
    body = {"job_type": "jobs.ping", "payload": {"message": "x"}, "dedupe_key": "once"}
    first = client.post("/api/v1/jobs/", body, format="json")
    second = client.post("/api/v1/jobs/", body, format="json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert JobRun.objects.count() == 1


# --- cancel and retry state rules --------------------------------------------------------


def test_cancelling_a_completed_run_is_a_409_with_the_reason(api, staff):
    run = JobRunFactory(status=Status.COMPLETED)
    response = api.as_user(staff).post(f"/api/v1/jobs/{run.pk}/cancel/")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "invalid_transition"
    assert "already completed" in error["message"]
    run.refresh_from_db()
    assert run.status == Status.COMPLETED


def test_cancelling_a_queued_run_cancels_it_with_the_reason_given(api, staff):
    run = JobRunFactory(status=Status.QUEUED)
    response = api.as_user(staff).post(f"/api/v1/jobs/{run.pk}/cancel/", {"reason": "wrong customer"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancel_reason"] == "wrong customer"


def test_retry_only_failed_or_cancelled_runs(api, staff, redis_conn, django_capture_on_commit_callbacks):
    client = api.as_user(staff)
    running = JobRunFactory(status=Status.RUNNING)
    refused = client.post(f"/api/v1/jobs/{running.pk}/retry/")
    assert refused.status_code == 409
    assert "only failed or cancelled runs can be retried" in error_of(refused)["message"]

    failed = JobRunFactory(status=Status.FAILED, attempt=4)
    with django_capture_on_commit_callbacks(execute=True):
        retried = client.post(f"/api/v1/jobs/{failed.pk}/retry/")
    assert retried.status_code == 200
    # Written as pending; it reaches Redis (and becomes queued) when the request's transaction commits.
    assert (retried.json()["status"], retried.json()["attempt"]) == ("pending", 0)
    assert queued_ids(redis_conn) == [str(failed.pk)]
    assert client.get(f"/api/v1/jobs/{failed.pk}/").json()["status"] == "queued"


def test_staff_cannot_act_on_a_run_that_does_not_exist(api, staff):
    response = api.as_user(staff).post("/api/v1/jobs/00000000-0000-0000-0000-000000000000/cancel/")
    assert response.status_code == 404


# --- job types and throttling --------------------------------------------------------------


def test_job_types_list_their_payload_schema(api, alice):
    types = {row["name"]: row for row in api.as_user(alice).get("/api/v1/job-types/").json()}
    ping = types["jobs.ping"]
    assert ping["payload_schema"]["required"] == ["message"]
    assert ping["payload_schema"]["properties"]["message"]["type"] == "string"
    assert ping["max_attempts"] == len(ping["retry_delays"]) + 1
    assert "darkwatch.scan" in types
    assert api.get("/api/v1/job-types/jobs.ping/").json()["name"] == "jobs.ping"
    assert api.get("/api/v1/job-types/no.such/").status_code == 404


def test_enqueue_is_throttled_more_strictly_than_reads(api, staff, settings, throttle_window):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "enqueue": "2/minute"},
    }
    client = api.as_user(staff)
    body = {"job_type": "jobs.ping", "payload": {"message": "x"}}
    assert [client.post("/api/v1/jobs/", body, format="json").status_code for _ in range(2)] == [201, 201]
    third = client.post("/api/v1/jobs/", body, format="json")
    assert third.status_code == 429
    assert error_of(third)["code"] == "throttled"
    assert third["Retry-After"] == "30"  # the rest of the minute
    assert JobRun.objects.count() == 2
    # Reads are on the user rate, not the enqueue one.
    assert client.get("/api/v1/jobs/").status_code == 200


def test_every_user_has_their_own_read_budget(api, alice, bob, settings, throttle_window):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "3/minute"},
    }
    assert [api.as_user(alice).get("/api/v1/jobs/").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert api.as_user(bob).get("/api/v1/jobs/").status_code == 200


def test_a_subscription_filter_of_another_user_shows_nothing(api, alice, bob):
    JobRunFactory(subscription=bob.subscriptions.get())
    other = SubscriptionFactory(user=bob)
    JobRunFactory(subscription=other)
    assert api.as_user(alice).get(f"/api/v1/jobs/?subscription={other.pk}").json()["count"] == 0
