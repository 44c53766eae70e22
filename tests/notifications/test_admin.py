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
