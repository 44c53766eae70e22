"""notify(): which notifications it creates, what it refuses, dedupe keys and transactions, on real Redis."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from jobs.models import JobRun
from notifications import kinds
from notifications.errors import ContextInvalid, NotificationInvalid, UnknownChannel, UnknownKind
from notifications.models import Notification, NotificationPreference, WebhookEndpoint
from notifications.services import notify, notify_staff
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

EXPOSURE = {"subscription_id": 7, "new_alerts": 2, "highest_severity": "high", "breaches": ["ExampleCorp 2024"]}
PHONE = "+14155550123"
PUSH_TOKEN = "ExponentPushToken[abcdefghijklmnop]"


def queued_ids(redis_conn, queue="high"):
    return [raw.decode() for raw in redis_conn.lrange(f"rq:queue:{queue}", 0, -1)]


def test_notify_creates_an_email_and_queues_its_send_job(redis_conn):
    user = UserFactory()

    (notification,) = notify(user, kinds.DARKWATCH_EXPOSURE, EXPOSURE)

    assert (notification.channel, notification.status, notification.address) == ("email", "queued", user.email)
    assert notification.context == EXPOSURE
    run = JobRun.objects.get(pk=notification.job_run_id)
    assert run.job_type == "notifications.send" and run.payload == {"notification_id": notification.pk}
    assert queued_ids(redis_conn) == [str(run.pk)]


def test_default_channels_are_every_enabled_one_that_has_an_address():
    user = UserFactory()
    NotificationPreference.objects.create(user=user, channel="sms", address=PHONE)
    NotificationPreference.objects.create(user=user, channel="push", address=PUSH_TOKEN, enabled=False)
    hooked = WebhookEndpoint.objects.create(owner=user, url="https://hooks.example/a", kinds=["darkwatch.exposure"])
    WebhookEndpoint.objects.create(owner=user, url="https://hooks.example/b", kinds=["reports.ready"])
    WebhookEndpoint.objects.create(owner=user, url="https://hooks.example/c", active=False)

    created = notify(user, kinds.DARKWATCH_EXPOSURE, EXPOSURE)

    assert sorted((n.channel, n.address) for n in created) == [
        ("email", user.email),
        ("sms", PHONE),
        ("webhook", hooked.url),
    ]


def test_a_user_without_an_email_address_and_no_other_channel_gets_nothing(redis_conn):
    user = UserFactory(email="")
    assert notify(user, kinds.DARKWATCH_EXPOSURE, EXPOSURE) == []
    assert redis_conn.llen("rq:queue:high") == 0


def test_channels_narrows_the_choice_and_never_adds_an_unreachable_one():
    user = UserFactory()
    NotificationPreference.objects.create(user=user, channel="sms", address=PHONE)

    created = notify(user, kinds.DARKWATCH_EXPOSURE, EXPOSURE, channels=["sms", "push"])

    assert [n.channel for n in created] == ["sms"]  # no push token, so no push


def test_staff_only_kinds_go_by_email_only():
    user = UserFactory(is_staff=True)
    NotificationPreference.objects.create(user=user, channel="sms", address=PHONE)
    created = notify(user, kinds.JOBS_FAILED, {"job_run_id": "abc", "job_type": "darkwatch.scan", "error": "boom"})
    assert [n.channel for n in created] == ["email"]


def test_extra_context_keys_are_allowed_and_dropped():
    (notification,) = notify(UserFactory(), kinds.REMINDER, {"message": "Renew your plan", "campaign": "nov"})
    assert notification.context == {"message": "Renew your plan", "subject": "Reminder from Kordant"}


@pytest.mark.parametrize(
    ("kind", "context", "error", "field"),
    [
        ("darkwatch.nope", EXPOSURE, UnknownKind, None),
        (kinds.DARKWATCH_EXPOSURE, {**EXPOSURE, "new_alerts": "x"}, ContextInvalid, "new_alerts"),
        (kinds.DARKWATCH_EXPOSURE, {k: v for k, v in EXPOSURE.items() if k != "breaches"}, ContextInvalid, "breaches"),
        (kinds.DARKWATCH_EXPOSURE, {**EXPOSURE, "highest_severity": "urgent"}, ContextInvalid, "highest_severity"),
        (kinds.DARKWATCH_EXPOSURE, {**EXPOSURE, "breaches": [f"b{i}" for i in range(11)]}, ContextInvalid, "breaches"),
        (kinds.REPORTS_READY, {"subscription_id": 1}, ContextInvalid, "report_id"),
        (
            kinds.HOMETITLE_CHANGE,
            {"subscription_id": 1, "changes": 1, "highest_severity": "low", "documents": [{"property": "12 Elm St"}]},
            ContextInvalid,
            "documents.0.document_type",
        ),
    ],
)
def test_bad_kind_or_context_is_refused_and_changes_nothing(redis_conn, kind, context, error, field):
    user = UserFactory()
    with pytest.raises(error) as raised:
        notify(user, kind, context)
    assert isinstance(raised.value, ValueError)
    if field:
        assert field in raised.value.errors
    assert not Notification.objects.exists() and not JobRun.objects.exists()
    assert redis_conn.dbsize() == 0


def test_unknown_channel_and_naive_send_at_are_refused():
    user = UserFactory()
    with pytest.raises(UnknownChannel, match="carrier-pigeon"):
        notify(user, kinds.REMINDER, {"message": "x"}, channels=["email", "carrier-pigeon"])
    with pytest.raises(NotificationInvalid, match="timezone-aware"):
        notify(user, kinds.REMINDER, {"message": "x"}, send_at=timezone.now().replace(tzinfo=None))
    assert not Notification.objects.exists()


def test_a_dedupe_key_makes_repeated_calls_create_one_notification_per_channel(redis_conn):
    user = UserFactory()
    NotificationPreference.objects.create(user=user, channel="sms", address=PHONE)

    first = notify(user, kinds.DARKWATCH_EXPOSURE, EXPOSURE, dedupe_key="alert-batch-41")
    again = notify(user, kinds.DARKWATCH_EXPOSURE, EXPOSURE, dedupe_key="alert-batch-41")

    assert sorted(n.pk for n in again) == sorted(n.pk for n in first) and len(first) == 2
    assert Notification.objects.count() == 2
    assert JobRun.objects.count() == 2
    assert len(notify(user, kinds.DARKWATCH_EXPOSURE, EXPOSURE, dedupe_key="alert-batch-42")) == 2


def test_the_same_dedupe_key_for_another_user_is_another_notification():
    key = "report-2026-11"
    notify(UserFactory(), kinds.REMINDER, {"message": "x"}, dedupe_key=key)
    notify(UserFactory(), kinds.REMINDER, {"message": "x"}, dedupe_key=key)
    assert Notification.objects.count() == 2


def test_inside_a_transaction_the_send_job_reaches_redis_on_commit(redis_conn):
    user = UserFactory()
    with transaction.atomic():
        (notification,) = notify(user, kinds.REMINDER, {"message": "x"})
        assert queued_ids(redis_conn) == []
    assert queued_ids(redis_conn) == [str(notification.job_run_id)]


def test_a_rollback_leaves_no_notification_and_no_job(redis_conn):
    with pytest.raises(RuntimeError), transaction.atomic():
        notify(UserFactory(), kinds.REMINDER, {"message": "x"})
        raise RuntimeError("caller failed")
    assert not Notification.objects.exists() and not JobRun.objects.exists()
    assert redis_conn.dbsize() == 0


def test_send_at_in_the_future_delays_the_job(redis_conn):
    due = timezone.now() + timedelta(days=2)
    (notification,) = notify(UserFactory(), kinds.REMINDER, {"message": "Call the county"}, send_at=due)
    run = JobRun.objects.get(pk=notification.job_run_id)
    assert notification.send_at == due and run.scheduled_for == due
    assert queued_ids(redis_conn) == []


def test_notify_staff_emails_every_active_staff_member_once_per_key():
    staff = [UserFactory(is_staff=True), UserFactory(is_staff=True)]
    UserFactory(is_staff=True, is_active=False)
    UserFactory(is_staff=True, email="")
    UserFactory()
    context = {"job_run_id": "5b0e", "job_type": "darkwatch.scan", "error": "feed down"}

    created = notify_staff(kinds.JOBS_FAILED, context, dedupe_key="run:5b0e")
    again = notify_staff(kinds.JOBS_FAILED, context, dedupe_key="run:5b0e")

    assert sorted(n.recipient_id for n in created) == sorted(user.pk for user in staff)
    assert {n.channel for n in created} == {"email"}
    assert sorted(n.pk for n in again) == sorted(n.pk for n in created)
