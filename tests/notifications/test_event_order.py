"""Resource events reach each endpoint in order per resource (notifications/events.py): one event
of a sequence at a time, the next only once the one before is final; the reconcile pass restarts
a sequence whose hand-over was lost. Driven end to end through burst workers to local receivers."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from werkzeug import Response

from jobs.services import delayed_runs_push_due
from notifications.models import Notification, WebhookEndpoint
from notifications.services import notifications_reconcile
from scanners.darkwatch.models import Alert
from tests.factories import SubscriptionFactory
from tests.notifications import serve_in_turn
from tests.notifications.test_events import make_alert

pytestmark = pytest.mark.django_db(transaction=True)

OK, UNAVAILABLE, GONE = Response("ok", status=200), Response("busy", status=503), Response("no", status=410)


def seen(received):
    """What the receiver got, in arrival order: (resource id, action, severity) per request."""
    out = []
    for request in received:
        data = json.loads(request.get_data())["data"]
        out.append((data["resource_id"], data["action"], data["object"]["severity"]))
    return out


def update(alert, severity):
    with transaction.atomic():  # one change, one transaction, as a scan or the API makes it
        alert.severity = severity
        alert.save()


def waiting(endpoint):
    """The endpoint's events saved without a send job: waiting for the event before them."""
    rows = Notification.objects.filter(webhook_endpoint=endpoint, status="queued", job_run__isnull=True)
    assert all(row.reason.startswith("waiting for the event before it") for row in rows)  # as the API shows it
    return [row.context["object"]["severity"] for row in rows.order_by("pk")]


@pytest.fixture
def subscription():
    return SubscriptionFactory()


def endpoint_for(subscription, url):
    return WebhookEndpoint.objects.create(owner=subscription.user, url=url, kinds=["alert.updated"])


def test_a_retried_first_update_still_reaches_the_receiver_before_the_second(run_worker, httpserver, subscription):
    received = serve_in_turn(httpserver, "/hooks", UNAVAILABLE, OK)
    alert = make_alert(subscription)
    endpoint_for(subscription, httpserver.url_for("/hooks"))
    with time_machine.travel(timezone.now(), tick=False) as clock:
        update(alert, "medium")
        update(alert, "critical")
        run_worker("high")  # update 1 is refused (503) and waits for its retry; update 2 must not overtake it
        assert seen(received) == [(alert.pk, "updated", "medium")]
        clock.shift(timedelta(seconds=60))
        delayed_runs_push_due()
        run_worker("high")  # update 1 goes, and hands over to update 2 in the same burst

    assert seen(received) == [(alert.pk, "updated", s) for s in ("medium", "medium", "critical")]
    assert set(Notification.objects.filter(kind="alert.updated").values_list("status", flat=True)) == {"sent"}


def test_a_first_event_that_fails_for_good_lets_the_next_one_go(run_worker, httpserver, subscription):
    received = serve_in_turn(httpserver, "/hooks", GONE, OK)
    alert = make_alert(subscription)
    endpoint = endpoint_for(subscription, httpserver.url_for("/hooks"))
    update(alert, "medium")
    update(alert, "critical")
    assert waiting(endpoint) == ["critical"]  # no send job until update 1 is final

    run_worker("high")

    assert seen(received) == [(alert.pk, "updated", "medium"), (alert.pk, "updated", "critical")]
    statuses = Notification.objects.filter(webhook_endpoint=endpoint).order_by("pk").values_list("status", flat=True)
    assert list(statuses) == ["failed", "sent"]


def test_a_stranded_sequence_is_restarted_by_the_reconcile_pass(run_worker, httpserver, subscription):
    received = serve_in_turn(httpserver, "/hooks", OK)
    alert = make_alert(subscription)
    endpoint = endpoint_for(subscription, httpserver.url_for("/hooks"))
    update(alert, "medium")
    update(alert, "critical")
    first = Notification.objects.filter(webhook_endpoint=endpoint).order_by("pk").first()

    notifications_reconcile()  # update 1 is still on its way: update 2 keeps waiting, it is not failed
    assert waiting(endpoint) == ["critical"]

    # Update 1 was sent, then the process died before handing over (a lost after-commit hook).
    Notification.objects.filter(pk=first.pk).update(status="sent", job_run=None)
    from django_rq import get_queue

    get_queue("high").empty()
    assert notifications_reconcile() == 0  # nothing failed...
    assert waiting(endpoint) == []  # ...and update 2 got its send job
    run_worker("high")

    assert seen(received) == [(alert.pk, "updated", "critical")]


def test_events_of_different_resources_do_not_wait_for_each_other(run_worker, httpserver, subscription):
    def answer(request, number):
        data = json.loads(request.get_data())["data"]
        return UNAVAILABLE if data["resource_id"] == stuck.pk else OK

    received = serve_in_turn(httpserver, "/hooks", answer)
    stuck, other = make_alert(subscription), make_alert(subscription)
    endpoint = endpoint_for(subscription, httpserver.url_for("/hooks"))
    with time_machine.travel(timezone.now(), tick=False):
        update(stuck, "medium")
        update(other, "medium")
        update(stuck, "critical")
        update(other, "critical")
        assert waiting(endpoint) == ["critical", "critical"]  # one per resource, behind its own first
        run_worker("high")

    # The stuck alert's receiver refuses it (and its second update waits); the other's go through, in order.
    assert seen(received) == [
        (stuck.pk, "updated", "medium"),
        (other.pk, "updated", "medium"),
        (other.pk, "updated", "critical"),
    ]
    assert waiting(endpoint) == ["critical"]


def test_events_of_one_resource_to_two_endpoints_are_ordered_per_endpoint(run_worker, httpserver, subscription):
    slow = serve_in_turn(httpserver, "/slow", UNAVAILABLE, OK)
    fast = serve_in_turn(httpserver, "/fast", OK)
    alert = make_alert(subscription)
    endpoint_for(subscription, httpserver.url_for("/slow"))
    endpoint_for(subscription, httpserver.url_for("/fast"))
    with time_machine.travel(timezone.now(), tick=False) as clock:
        update(alert, "medium")
        update(alert, "critical")
        run_worker("high")
        # The fast endpoint is not held back by the slow one's retry.
        assert seen(fast) == [(alert.pk, "updated", "medium"), (alert.pk, "updated", "critical")]
        assert seen(slow) == [(alert.pk, "updated", "medium")]
        clock.shift(timedelta(seconds=60))
        delayed_runs_push_due()
        run_worker("high")

    assert seen(slow) == [(alert.pk, "updated", s) for s in ("medium", "medium", "critical")]
    assert len(fast) == 2


def test_a_cancelled_event_lets_the_next_one_go(subscription):
    from notifications.services import notification_cancel

    alert = make_alert(subscription)
    endpoint = endpoint_for(subscription, "http://127.0.0.1:9/hooks")
    update(alert, "medium")
    update(alert, "critical")
    first = Notification.objects.filter(webhook_endpoint=endpoint).order_by("pk").first()
    assert waiting(endpoint) == ["critical"]

    notification_cancel(first)

    assert waiting(endpoint) == []
    last = Notification.objects.filter(webhook_endpoint=endpoint).order_by("pk").last()
    assert (last.status, last.reason, last.job_run.status) == ("queued", "", "queued")


def test_a_replay_is_sent_at_once_even_while_a_later_event_of_its_resource_is_retried(
    run_worker, httpserver, subscription
):
    from notifications.services import webhook_event_replay

    def answer(request, number):
        return UNAVAILABLE if json.loads(request.get_data())["data"]["object"]["severity"] == "critical" else OK

    received = serve_in_turn(httpserver, "/hooks", answer)
    alert = make_alert(subscription)
    endpoint = endpoint_for(subscription, httpserver.url_for("/hooks"))
    with time_machine.travel(timezone.now(), tick=False):
        update(alert, "medium")
        update(alert, "critical")
        run_worker("high")  # update 1 sent; update 2 refused, waiting for its retry
        first, second = Notification.objects.filter(webhook_endpoint=endpoint).order_by("pk")
        assert (first.status, second.status) == ("sent", "queued")

        webhook_event_replay(first)  # the operator asks for it again: it does not wait for update 2
        run_worker("high")

    assert seen(received) == [(alert.pk, "updated", s) for s in ("medium", "critical", "medium")]
    second.refresh_from_db()
    assert second.status == "queued" and second.attempts == 1  # still waiting for its own retry


def test_a_hand_over_waits_for_an_event_being_made_and_then_starts_it(subscription):
    """The race a lock settles: update 1 ends while update 2 is being made (not yet committed)."""
    import threading
    import time

    from django.db import connection, connections

    from notifications.events import event_sequence_next, resource_events_emit

    if connection.vendor != "postgresql":
        pytest.skip("two database sessions racing need PostgreSQL; SQLite serialises writers")
    alert = make_alert(subscription)
    endpoint = endpoint_for(subscription, "http://127.0.0.1:9/hooks")
    update(alert, "medium")
    first = Notification.objects.get(webhook_endpoint=endpoint)
    Notification.objects.filter(pk=first.pk).update(status="sending")  # update 1 is on its way
    made, commit = threading.Event(), threading.Event()
    outcome = {}

    def make_update_2():
        try:
            with transaction.atomic():
                Alert.objects.filter(pk=alert.pk).update(severity="critical")  # announced by hand below
                resource_events_emit("alert", "updated", [alert.pk])
                made.set()
                commit.wait(5)
        finally:
            connections.close_all()

    def hand_over():
        try:
            outcome["started"] = event_sequence_next(endpoint.pk, f"alert:{alert.pk}")
        finally:
            connections.close_all()

    maker = threading.Thread(target=make_update_2)
    maker.start()
    assert made.wait(5)
    Notification.objects.filter(pk=first.pk).update(status="sent")  # update 1 delivered
    handing = threading.Thread(target=hand_over)
    handing.start()
    with connection.cursor() as cursor:  # until the hand-over waits for the lock the maker holds
        for _ in range(100):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                break
            time.sleep(0.05)
    commit.set()
    maker.join(5)
    handing.join(5)

    second = Notification.objects.filter(webhook_endpoint=endpoint).order_by("pk").last()
    assert second.context["object"]["severity"] == "critical"
    assert outcome["started"] is not None and outcome["started"].pk == second.pk
    assert waiting(endpoint) == []
