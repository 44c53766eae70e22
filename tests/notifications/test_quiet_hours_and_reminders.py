"""Quiet hours hold SMS and push until they end, in the user's timezone; reminders wait for send_at
and a cancelled reminder is never sent."""

import zoneinfo
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from jobs import enqueue
from jobs.dispatch import DELAYED_KEY
from jobs.models import JobRun
from jobs.services import delayed_runs_push_due
from notifications import kinds
from notifications.errors import NotCancellable
from notifications.models import NotificationPreference
from notifications.selectors import quiet_hours_end
from notifications.services import notification_cancel, notify
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
PHONE = "+14155550123"


def local(*args) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("start", "end", "now", "expected"),
    [
        (time(22), time(7), local(2026, 11, 23, 23, 30), local(2026, 11, 24, 7)),  # late evening
        (time(22), time(7), local(2026, 11, 24, 3, 0), local(2026, 11, 24, 7)),  # after midnight
        (time(22), time(7), local(2026, 11, 24, 7, 0), None),  # the end itself is outside
        (time(22), time(7), local(2026, 11, 24, 12, 0), None),
        (time(13), time(14), local(2026, 11, 24, 13, 30), local(2026, 11, 24, 14)),  # a window within a day
        (time(9), time(9), local(2026, 11, 24, 9, 0), None),  # an empty window
        # 2027-03-14 02:30 does not exist in New York (clocks jump 02:00 -> 03:00): the first instant after.
        (time(23), time(2, 30), local(2027, 3, 14, 1, 0), datetime(2027, 3, 14, 7, 30, tzinfo=UTC)),
    ],
)
def test_quiet_hours_end(start, end, now, expected):
    assert quiet_hours_end(start, end, NEW_YORK, now) == expected


@pytest.fixture
def night_owl():
    """A New Yorker whose SMS and push are quiet from 22:00 to 07:00 local time."""
    user = UserFactory()
    SubscriptionFactory(user=user, timezone="America/New_York")
    for channel, address in (("sms", PHONE), ("push", "ExponentPushToken[abcdefghijklmnop]")):
        NotificationPreference.objects.create(
            user=user, channel=channel, address=address, quiet_hours_start=time(22), quiet_hours_end=time(7)
        )
    return user


def test_quiet_hours_delay_sms_and_push_until_they_end_but_not_email(night_owl, redis_conn):
    with time_machine.travel(local(2026, 11, 23, 23, 30), tick=False):
        created = notify(night_owl, kinds.REMINDER, {"message": "x"})

    by_channel = {n.channel: n for n in created}
    morning = local(2026, 11, 24, 7)
    assert by_channel["sms"].send_at == by_channel["push"].send_at == morning
    assert by_channel["email"].send_at is None
    for channel in ("sms", "push"):
        run = JobRun.objects.get(pk=by_channel[channel].job_run_id)
        assert run.scheduled_for == morning
        assert redis_conn.zscore(DELAYED_KEY, str(run.pk)) == morning.timestamp()


def test_outside_quiet_hours_nothing_is_delayed(night_owl):
    with time_machine.travel(local(2026, 11, 24, 12, 0), tick=False):
        assert all(n.send_at is None for n in notify(night_owl, kinds.REMINDER, {"message": "x"}))


def test_a_reminder_due_in_quiet_hours_waits_for_them_to_end(night_owl):
    with time_machine.travel(local(2026, 11, 24, 12, 0), tick=False):
        (sms,) = notify(
            night_owl, kinds.REMINDER, {"message": "x"}, channels=["sms"], send_at=local(2026, 11, 24, 23, 0)
        )
    assert sms.send_at == local(2026, 11, 25, 7)


def test_without_a_subscription_quiet_hours_are_in_utc():
    user = UserFactory()
    NotificationPreference.objects.create(
        user=user, channel="sms", address=PHONE, quiet_hours_start=time(22), quiet_hours_end=time(7)
    )
    with time_machine.travel(datetime(2026, 11, 23, 23, 0, tzinfo=UTC), tick=False):
        (sms,) = notify(user, kinds.REMINDER, {"message": "x"}, channels=["sms"])
    assert sms.send_at == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def test_a_reminder_is_sent_when_it_is_due_and_not_before(run_worker):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        (reminder,) = notify(
            UserFactory(), kinds.REMINDER, {"message": "Call the county"}, send_at=start + timedelta(hours=3)
        )
        run_worker()
        clock.shift(timedelta(hours=3) - timedelta(seconds=1))
        assert delayed_runs_push_due() == 0
        assert mail.outbox == []

        clock.shift(timedelta(seconds=1))
        assert delayed_runs_push_due() == 1
        run_worker()

    reminder.refresh_from_db()
    assert reminder.status == "sent" and [m.body for m in mail.outbox] == ["Call the county"]


def test_a_cancelled_reminder_is_never_sent(run_worker, redis_conn):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        (reminder,) = notify(UserFactory(), kinds.REMINDER, {"message": "never"}, send_at=start + timedelta(days=1))

        notification_cancel(reminder)

        reminder.refresh_from_db()
        assert reminder.status == "cancelled"
        run = JobRun.objects.get(pk=reminder.job_run_id)
        assert run.status == "cancelled"
        assert redis_conn.zscore(DELAYED_KEY, str(run.pk)) is None

        clock.shift(timedelta(days=2))
        assert delayed_runs_push_due() == 0
        # Even a send job that still reaches a worker (a stale copy in Redis) sends nothing.
        enqueue("notifications.send", {"notification_id": reminder.pk})
        run_worker()

    assert mail.outbox == []
    reminder.refresh_from_db()
    assert reminder.status == "cancelled"


def test_a_sent_notification_cannot_be_cancelled(run_worker):
    (notification,) = notify(UserFactory(), kinds.REMINDER, {"message": "sent already"})
    run_worker()
    with pytest.raises(NotCancellable, match="is sent"):
        notification_cancel(notification)
    notification.refresh_from_db()
    assert notification.status == "sent"
