"""SMS and push end to end: notify, a burst worker, local servers speaking Twilio's and Expo's APIs.

Also what exactly-once means for them: retried when nothing can have been sent, never resent
when the provider may have taken the message, and the per-user SMS rate limit.
"""

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from werkzeug import Response

from jobs.models import JobRun
from jobs.services import delayed_runs_push_due
from notifications import kinds
from notifications.models import Notification, NotificationPreference
from notifications.services import notify
from tests.factories import UserFactory
from tests.notifications import closed_port, serve_in_turn

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token"
FROM = "+14155550100"
PHONE = "+447700900123"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
PUSH_TOKEN = "ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]"
EXPO_TOKEN = "expo-access-token"
PUSH_PATH = "/--/api/v2/push/send"
EXPOSURE = {"subscription_id": 7, "new_alerts": 2, "highest_severity": "high", "breaches": ["ExampleCorp 2024"]}


@pytest.fixture
def twilio(httpserver, settings):
    """Point the SMS channel at the local server; returns the requests it receives, in order."""
    settings.TWILIO_API_BASE = httpserver.url_for("")
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_FROM_NUMBER = ACCOUNT_SID, AUTH_TOKEN, FROM

    def answer(*responses):
        """Answer POSTs with these (status, body) pairs in turn; a None body is Twilio's 201 with a fresh sid."""
        return serve_in_turn(httpserver, MESSAGES_PATH, *(twilio_answer(status, body) for status, body in responses))

    return answer


def json_response(status: int, body) -> Response:
    content = json.dumps(body) if isinstance(body, dict) else body
    return Response(content, status=status, content_type="application/json")


def twilio_answer(status: int, body):
    if body is not None:
        return json_response(status, body)
    return lambda request, number: json_response(
        status, {"sid": f"SM{number:032x}", "status": "queued", "to": request.form["To"]}
    )


def user_reachable_by(channel: str, address: str):
    user = UserFactory()
    NotificationPreference.objects.create(user=user, channel=channel, address=address)
    return user


@pytest.fixture
def texter():
    return user_reachable_by("sms", PHONE)


def test_an_sms_is_posted_to_twilio_with_basic_auth_and_the_sid_recorded(run_worker, twilio, texter):
    received = twilio((201, None))
    (notification,) = notify(texter, kinds.DARKWATCH_EXPOSURE, EXPOSURE, channels=["sms"])

    run_worker()

    (request,) = received
    assert (request.authorization.username, request.authorization.password) == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.form.to_dict() == {
        "To": PHONE,
        "From": FROM,
        "Body": "Kordant: 2 new dark-web exposures (high). Open the app for details.",
    }
    notification.refresh_from_db()
    assert (notification.status, notification.provider_message_id) == ("sent", f"SM{1:032x}")


def test_a_twilio_5xx_is_retried_and_then_sent(run_worker, twilio, texter):
    received = twilio((503, {"code": 20500, "message": "Internal server error"}), (201, None))
    with time_machine.travel(timezone.now(), tick=False) as clock:
        (notification,) = notify(texter, kinds.REMINDER, {"message": "Renew"}, channels=["sms"])
        run_worker()

        notification.refresh_from_db()
        assert notification.status == "queued"
        assert notification.error == "Twilio answered 503: error 20500: Internal server error"
        assert JobRun.objects.get(pk=notification.job_run_id).status == "retrying"

        clock.shift(timedelta(seconds=60))
        delayed_runs_push_due()
        run_worker()

    notification.refresh_from_db()
    assert (notification.status, notification.attempts, len(received)) == ("sent", 2, 2)


def test_a_twilio_4xx_fails_at_once_with_twilios_message(run_worker, twilio, texter):
    message = "The 'To' number +447700900123 is not a valid phone number."
    received = twilio((400, {"code": 21211, "message": message, "status": 400}))
    (notification,) = notify(texter, kinds.REMINDER, {"message": "Renew"}, channels=["sms"])

    run_worker()

    notification.refresh_from_db()
    run = JobRun.objects.get(pk=notification.job_run_id)
    assert (notification.status, run.status, run.attempt, len(received)) == ("failed", "failed", 1, 1)
    assert notification.error == f"Twilio answered 400: error 21211: {message}"
    assert notification.reason.startswith("refused: Twilio answered 400: error 21211")


def test_a_2xx_twilio_answer_without_a_sid_is_not_resent(run_worker, twilio, texter):
    # Twilio took the request; whether it queued a text we cannot tell, and a resend could be a second text.
    received = twilio((201, "<html>proxy page</html>"))
    (notification,) = notify(texter, kinds.REMINDER, {"message": "Renew"}, channels=["sms"])

    run_worker()

    notification.refresh_from_db()
    assert notification.status == "failed" and notification.reason.startswith("outcome unknown")
    assert JobRun.objects.get(pk=notification.job_run_id).status == "failed"
    assert len(received) == 1


def test_an_unreachable_twilio_is_retried_because_nothing_was_sent(run_worker, settings, texter):
    settings.TWILIO_API_BASE = f"http://127.0.0.1:{closed_port()}"
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_FROM_NUMBER = ACCOUNT_SID, AUTH_TOKEN, FROM
    (notification,) = notify(texter, kinds.REMINDER, {"message": "Renew"}, channels=["sms"])

    run_worker()

    notification.refresh_from_db()
    assert notification.status == "queued" and "could not be reached" in notification.error
    assert JobRun.objects.get(pk=notification.job_run_id).status == "retrying"


def test_an_sms_whose_worker_died_mid_send_is_never_resent(run_worker, twilio, texter):
    received = twilio((201, None))
    (notification,) = notify(texter, kinds.REMINDER, {"message": "Renew"}, channels=["sms"])
    Notification.objects.filter(pk=notification.pk).update(
        status="sending", attempts=1, claimed_at=timezone.now(), claimed_by=f"{notification.job_run_id}:0"
    )

    run_worker()

    notification.refresh_from_db()
    assert notification.status == "failed" and notification.reason.startswith("outcome unknown")
    assert received == []


def test_sms_unconfigured_fails_naming_the_variables(run_worker, settings, texter):
    settings.TWILIO_ACCOUNT_SID = settings.TWILIO_AUTH_TOKEN = settings.TWILIO_FROM_NUMBER = ""
    (notification,) = notify(texter, kinds.REMINDER, {"message": "Renew"}, channels=["sms"])
    run_worker()
    notification.refresh_from_db()
    assert notification.status == "failed"
    assert "set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER" in notification.error


def test_the_sms_rate_limit_suppresses_a_flood_with_the_reason(run_worker, twilio, texter, settings):
    settings.NOTIFICATIONS_SMS_PER_HOUR = 3
    received = twilio((201, None))
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for i in range(5):
            notify(texter, kinds.REMINDER, {"message": f"flood {i}"}, channels=["sms"])
        run_worker()

        statuses = sorted(Notification.objects.values_list("status", flat=True))
        assert statuses == ["sent", "sent", "sent", "suppressed", "suppressed"]
        assert len(received) == 3
        suppressed = Notification.objects.filter(status="suppressed").first()
        assert suppressed.reason == (
            "SMS rate limit: 3 texts to this user in the last hour (NOTIFICATIONS_SMS_PER_HOUR=3)"
        )

        # Another user is not held back, and the first one has room again an hour later.
        other = user_reachable_by("sms", "+447700900999")
        notify(other, kinds.REMINDER, {"message": "mine"}, channels=["sms"])
        run_worker()
        assert len(received) == 4

        clock.shift(timedelta(hours=1, seconds=1))
        (later,) = notify(texter, kinds.REMINDER, {"message": "an hour on"}, channels=["sms"])
        run_worker()
        later.refresh_from_db()
        assert later.status == "sent" and len(received) == 5


# --- push -------------------------------------------------------------------------------


@pytest.fixture
def expo(httpserver, settings):
    settings.EXPO_PUSH_URL = httpserver.url_for("")
    settings.EXPO_ACCESS_TOKEN = EXPO_TOKEN

    def answer(ticket):
        return serve_in_turn(httpserver, PUSH_PATH, json_response(200, {"data": ticket}))

    return answer


@pytest.fixture
def phone_owner():
    return user_reachable_by("push", PUSH_TOKEN)


def test_a_push_is_posted_to_expo_with_the_token_and_the_ticket_recorded(run_worker, expo, phone_owner):
    received = expo({"status": "ok", "id": "0a1b2c3d-receipt"})
    (notification,) = notify(phone_owner, kinds.DARKWATCH_EXPOSURE, EXPOSURE, channels=["push"])

    run_worker()

    (request,) = received
    assert request.headers["Authorization"] == f"Bearer {EXPO_TOKEN}"
    assert request.json == {
        "to": PUSH_TOKEN,
        "title": "2 new dark-web exposures",
        "body": "Highest severity: high. Tap to review.",
        "data": {"kind": "darkwatch.exposure", "notification_id": notification.pk},
    }
    notification.refresh_from_db()
    assert (notification.status, notification.provider_message_id) == ("sent", "0a1b2c3d-receipt")


def test_a_dead_push_token_fails_with_expos_message_and_is_forgotten(run_worker, expo, phone_owner):
    expo({"status": "error", "message": "not a registered push token", "details": {"error": "DeviceNotRegistered"}})
    (notification,) = notify(phone_owner, kinds.REMINDER, {"message": "x"}, channels=["push"])

    run_worker()

    notification.refresh_from_db()
    assert notification.status == "failed"
    assert "DeviceNotRegistered" in notification.error and "not a registered push token" in notification.error
    assert NotificationPreference.objects.get(user=phone_owner, channel="push").address == ""
    assert notify(phone_owner, kinds.REMINDER, {"message": "y"}, channels=["push"]) == []
