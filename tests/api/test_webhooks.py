"""/api/v1/webhook-endpoints/, /webhook-events/, /webhook-deliveries/: the delivery log, replay, and
what someone else (or hostile input) gets: 404s and clear 4xx that change nothing."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from werkzeug import Response

from notifications.models import Notification, WebhookDelivery, WebhookEndpoint
from notifications.services import notify
from tests.api.conftest import error_of
from tests.notifications import serve_in_turn

pytestmark = pytest.mark.django_db(transaction=True)

CONFIRMED = {"subscription_id": 7, "broker": "PeopleFinder"}


@pytest.fixture
def hook(httpserver, alice):
    return WebhookEndpoint.objects.create(owner=alice, url=httpserver.url_for("/hooks"))


def send(endpoint):
    (event,) = notify(endpoint.owner, "removebrokers.confirmed", CONFIRMED, channels=["webhook"])
    return event


def failed_event(endpoint, **fields):
    return Notification.objects.create(
        recipient=endpoint.owner,
        channel="webhook",
        kind="removebrokers.confirmed",
        context=CONFIRMED,
        webhook_endpoint=endpoint,
        status="failed",
        attempts=1,
        **fields,
    )


def test_the_owner_sees_the_event_the_request_as_sent_and_the_answer(api, alice, hook, httpserver, run_worker):
    serve_in_turn(httpserver, "/hooks", Response("thanks", status=200))
    event = send(hook)
    run_worker()

    client = api.as_user(alice)
    (listed,) = client.get("/api/v1/webhook-endpoints/").json()["results"]
    assert listed["id"] == hook.pk and "secret" not in listed
    (shown,) = client.get(f"/api/v1/webhook-events/?endpoint={hook.pk}").json()["results"]
    assert (shown["event_id"], shown["kind"], shown["status"]) == (f"ntf_{event.pk}", "removebrokers.confirmed", "sent")
    assert shown["data"] == CONFIRMED
    (delivery,) = client.get(f"/api/v1/webhook-deliveries/?event={event.pk}").json()["results"]
    assert (delivery["event_id"], delivery["status_code"], delivery["succeeded"]) == (f"ntf_{event.pk}", 200, True)
    assert delivery["response_excerpt"] == "thanks" and delivery["duration_ms"] > 0
    assert delivery["request_headers"]["kordant-delivery"] == f"ntf_{event.pk}"
    assert '"broker":"PeopleFinder"' in delivery["request_body"]
    assert delivery["url"] == hook.url


def test_replaying_one_event_sends_it_again_with_the_same_id(api, alice, hook, httpserver, run_worker):
    received = serve_in_turn(httpserver, "/hooks", Response("no", status=400), Response("ok", status=200))
    event = send(hook)
    run_worker()
    event.refresh_from_db()
    assert event.status == "failed"

    response = api.as_user(alice).post(f"/api/v1/webhook-events/{event.pk}/replay/")
    assert response.status_code == 202, response.content
    again = api.as_user(alice).post(f"/api/v1/webhook-events/{event.pk}/replay/")
    assert again.status_code == 409 and "being delivered" in error_of(again)["message"]  # queued already
    run_worker()

    first, second = received
    assert first.headers["Kordant-Delivery"] == second.headers["Kordant-Delivery"] == f"ntf_{event.pk}"
    assert first.get_data() == second.get_data()  # the same event, byte for byte
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("sent", 2)
    rows = list(WebhookDelivery.objects.order_by("attempt").values_list("attempt", "succeeded", "status_code"))
    assert rows == [(1, False, 400), (2, True, 200)]


def test_replaying_failed_events_since_a_time_takes_only_those(api, alice, hook, httpserver, run_worker):
    received = serve_in_turn(httpserver, "/hooks", Response("ok", status=200))
    with time_machine.travel(timezone.now() - timedelta(days=2)):
        old = failed_event(hook)
    since = timezone.now() - timedelta(hours=1)
    recent = [failed_event(hook), failed_event(hook)]
    sent = failed_event(hook)
    Notification.objects.filter(pk=sent.pk).update(status="sent")

    response = api.as_user(alice).post(
        f"/api/v1/webhook-endpoints/{hook.pk}/replay-failed/", {"since": since.isoformat()}, format="json"
    )
    assert response.status_code == 202 and response.json() == {"replayed": 2}
    run_worker()

    assert sorted(request.headers["Kordant-Delivery"] for request in received) == [f"ntf_{e.pk}" for e in recent]
    old.refresh_from_db()
    assert old.status == "failed"


def test_someone_elses_endpoint_events_and_deliveries_are_404_and_unchanged(api, alice, bob, hook):
    event = failed_event(hook)
    WebhookDelivery.objects.create(endpoint=hook, notification=event, attempt=1, status_code=500)
    delivery = WebhookDelivery.objects.get()
    client = api.as_user(bob)

    for url in (
        f"/api/v1/webhook-endpoints/{hook.pk}/",
        f"/api/v1/webhook-events/{event.pk}/",
        f"/api/v1/webhook-deliveries/{delivery.pk}/",
    ):
        assert client.get(url).status_code == 404, url
    for path in ("webhook-endpoints", "webhook-events", "webhook-deliveries"):
        assert client.get(f"/api/v1/{path}/").json()["count"] == 0
    replay = client.post(f"/api/v1/webhook-events/{event.pk}/replay/")
    replay_all = client.post(
        f"/api/v1/webhook-endpoints/{hook.pk}/replay-failed/", {"since": "2020-01-01T00:00:00Z"}, format="json"
    )
    assert (replay.status_code, replay_all.status_code) == (404, 404)
    assert error_of(replay)["code"] == "not_found"
    event.refresh_from_db()
    assert event.status == "failed"


def test_staff_who_may_view_endpoints_see_everyones(api, staff, alice, bob, hook):
    WebhookEndpoint.objects.create(owner=bob, url="http://127.0.0.1:9/bob")
    failed_event(hook)
    client = api.as_user(staff)
    assert client.get("/api/v1/webhook-endpoints/").json()["count"] == 2
    assert client.get("/api/v1/webhook-events/").json()["count"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"since": "yesterday"},
        {"since": "2026-12-01T00:00:00+16:00"},  # no such offset on Earth
        {"since": "0001-01-01T00:00:00+01:00"},  # before year 1 in UTC
        {"since": "2026-12-01T00:00:00Z" + " " * 100},
        {"since": 12345},
        {"since": ["2026-12-01T00:00:00Z"]},
        {"since": None},
    ],
)
def test_a_bad_since_is_a_400_and_replays_nothing(api, alice, hook, body):
    event = failed_event(hook)
    response = api.as_user(alice).post(f"/api/v1/webhook-endpoints/{hook.pk}/replay-failed/", body, format="json")
    assert response.status_code == 400, response.content
    assert "since" in error_of(response)["fields"]
    event.refresh_from_db()
    assert event.status == "failed" and event.job_run_id is None


def test_hostile_ids_and_bodies_get_clear_4xx(api, alice, hook):
    event = failed_event(hook)
    client = api.as_user(alice)
    for url in (
        "/api/v1/webhook-events/99999999999999999999/replay/",
        "/api/v1/webhook-events/abc/replay/",
        "/api/v1/webhook-endpoints/-1/replay-failed/",
    ):
        assert client.post(url, {"since": "2020-01-01T00:00:00Z"}, format="json").status_code == 404, url
    huge = client.post(
        f"/api/v1/webhook-endpoints/{hook.pk}/replay-failed/",
        {"since": "2020-01-01T00:00:00Z", "padding": "x" * 3_000_000},
        format="json",
    )
    assert huge.status_code == 413
    assert client.get("/api/v1/webhook-deliveries/?event=abc").status_code == 400
    assert client.get("/api/v1/webhook-events/?created_after=never").status_code == 400
    event.refresh_from_db()
    assert event.status == "failed"


def test_a_disabled_endpoint_is_not_replayed_to(api, alice, hook):
    event = failed_event(hook)
    WebhookEndpoint.objects.filter(pk=hook.pk).update(active=False, disabled_reason="5 failures")
    client = api.as_user(alice)
    one = client.post(f"/api/v1/webhook-events/{event.pk}/replay/")
    every = client.post(
        f"/api/v1/webhook-endpoints/{hook.pk}/replay-failed/", {"since": "2020-01-01T00:00:00Z"}, format="json"
    )
    assert (one.status_code, every.status_code) == (409, 409)
    assert "re-enable" in error_of(every)["message"]
    event.refresh_from_db()
    assert event.status == "failed"
