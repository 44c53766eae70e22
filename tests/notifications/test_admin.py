"""Staff see notifications and endpoints, never a whole webhook secret, and re-enable or cancel from the admin."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import kinds
from notifications.models import Notification, NotificationPreference, WebhookEndpoint
from notifications.services import notify
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_notifications_page_loads_for_staff(admin_client):
    user = UserFactory()
    NotificationPreference.objects.create(user=user, channel="sms", address="+14155550123")
    endpoint = WebhookEndpoint.objects.create(owner=user, url="https://hooks.example/k")
    notification, *_ = notify(user, kinds.REMINDER, {"message": "x"})
    for path in (
        "/admin/notifications/notification/",
        f"/admin/notifications/notification/{notification.pk}/change/",
        "/admin/notifications/notificationpreference/",
        "/admin/notifications/webhookendpoint/",
        f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/",
        "/admin/notifications/webhookdelivery/",
    ):
        assert admin_client.get(path).status_code == 200, path
    assert admin_client.get("/admin/notifications/notification/add/").status_code == 403


def test_the_webhook_secret_is_never_shown_whole(admin_client):
    endpoint = WebhookEndpoint.objects.create(owner=UserFactory(), url="https://hooks.example/k")
    for path in (
        "/admin/notifications/webhookendpoint/",
        f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/",
    ):
        page = admin_client.get(path).content.decode()
        assert endpoint.secret not in page
        assert f"{endpoint.secret[:6]}…{endpoint.secret[-4:]}" in page


def test_the_re_enable_action_turns_a_disabled_endpoint_back_on(admin_client):
    endpoint = WebhookEndpoint.objects.create(
        owner=UserFactory(),
        url="https://hooks.example/k",
        active=False,
        consecutive_failures=5,
        disabled_at=timezone.now(),
        disabled_reason="5 consecutive failed deliveries",
    )
    response = admin_client.post(
        "/admin/notifications/webhookendpoint/", {"action": "reenable", "_selected_action": [endpoint.pk]}
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.consecutive_failures, endpoint.disabled_reason) == (True, 0, "")


def test_the_cancel_action_cancels_reminders_not_yet_sent(admin_client, run_worker):
    user = UserFactory()
    (sent,) = notify(user, kinds.REMINDER, {"message": "now"})
    run_worker()
    (later,) = notify(user, kinds.REMINDER, {"message": "later"}, send_at=timezone.now() + timedelta(days=1))

    response = admin_client.post(
        "/admin/notifications/notification/", {"action": "cancel", "_selected_action": [sent.pk, later.pk]}
    )

    assert response.status_code == 302
    assert dict(Notification.objects.values_list("pk", "status")) == {sent.pk: "sent", later.pk: "cancelled"}


def test_non_staff_are_sent_to_login(client):
    assert client.get("/admin/notifications/notification/").status_code == 302


def failed_webhook(endpoint, **fields):
    return Notification.objects.create(
        recipient=endpoint.owner,
        channel="webhook",
        kind=kinds.REMINDER,
        context={"message": "x", "subject": "s"},
        webhook_endpoint=endpoint,
        status="failed",
        attempts=1,
        **fields,
    )


def test_staff_replay_selected_events_and_deliveries_from_the_admin(admin_client):
    from notifications.models import WebhookDelivery

    endpoint = WebhookEndpoint.objects.create(owner=UserFactory(), url="https://hooks.example/k")
    first, second = failed_webhook(endpoint), failed_webhook(endpoint)
    WebhookDelivery.objects.create(
        endpoint=endpoint, notification=second, attempt=1, status_code=500, request_headers={"a": "b"}
    )
    page = admin_client.get(f"/admin/notifications/notification/{second.pk}/change/").content.decode()
    assert "request_headers" in page or "Request headers" in page

    admin_client.post("/admin/notifications/notification/", {"action": "replay", "_selected_action": [first.pk]})
    admin_client.post(
        "/admin/notifications/webhookdelivery/",
        {"action": "replay", "_selected_action": list(WebhookDelivery.objects.values_list("pk", flat=True))},
    )
    assert set(Notification.objects.values_list("status", flat=True)) == {"queued"}
    assert all(row.job_run_id for row in Notification.objects.all())


def test_replay_failed_since_asks_for_the_time_then_replays_only_those(admin_client):
    endpoint = WebhookEndpoint.objects.create(owner=UserFactory(), url="https://hooks.example/k")
    recent = failed_webhook(endpoint)
    old = failed_webhook(endpoint)
    Notification.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    changelist = "/admin/notifications/webhookendpoint/"

    form = admin_client.post(changelist, {"action": "replay_failed", "_selected_action": [endpoint.pk]})
    assert form.status_code == 200 and 'name="since"' in form.content.decode()
    assert Notification.objects.filter(status="queued").count() == 0  # the form changed nothing

    bad = admin_client.post(
        changelist, {"action": "replay_failed", "_selected_action": [endpoint.pk], "post": "yes", "since": "soon"}
    )
    assert bad.status_code == 200 and "errorlist" in bad.content.decode()
    since = (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    done = admin_client.post(
        changelist, {"action": "replay_failed", "_selected_action": [endpoint.pk], "post": "yes", "since": since}
    )
    assert done.status_code == 302
    assert list(Notification.objects.filter(status="queued").values_list("pk", flat=True)) == [recent.pk]
