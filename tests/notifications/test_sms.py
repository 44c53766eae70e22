import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from werkzeug import Request, Response

from jobs.errors import ProviderRejected, ProviderUnavailable
from kordant.outbound import MessageInvalid, parse_retry_after
from notifications.providers.sms import TwilioSMS
from tests.notifications import Stall, closed_port

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token"
FROM = "+14155550100"
TO = "+447700900123"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
MESSAGE_SID = "SM" + "fedcba9876543210" * 2


def twilio_created(request: Request) -> Response:
    """Twilio's 201 answer to a Messages POST (abridged)."""
    body = {"sid": MESSAGE_SID, "status": "queued", "to": request.form["To"], "body": request.form["Body"]}
    return Response(json.dumps(body), status=201, content_type="application/json")


@pytest.fixture
def sms(httpserver):
    client = TwilioSMS(
        base_url=httpserver.url_for(""), account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=FROM, timeout=2
    )
    yield client
    client.close()


def test_send_posts_the_documented_form_with_basic_auth_and_returns_the_sid(httpserver, sms):
    received = []
    httpserver.expect_request(MESSAGES_PATH, method="POST").respond_with_handler(
        lambda request: received.append(request) or twilio_created(request)
    )

    delivery = sms.send(TO, "Your DarkWatch report is ready.")

    assert delivery.provider_message_id == MESSAGE_SID
    assert delivery.status_code == 201
    assert delivery.duration_ms > 0
    assert MESSAGE_SID in delivery.response_excerpt
    (request,) = received
    assert (request.authorization.username, request.authorization.password) == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.mimetype == "application/x-www-form-urlencoded"
    assert request.form.to_dict() == {"To": TO, "From": FROM, "Body": "Your DarkWatch report is ready."}


def test_a_messaging_service_sid_is_sent_as_messaging_service_sid(httpserver):
    service_sid = "MG" + "0" * 32
    received = []
    httpserver.expect_request(MESSAGES_PATH, method="POST").respond_with_handler(
        lambda request: received.append(request.form.to_dict()) or twilio_created(request)
    )
    with TwilioSMS(
        base_url=httpserver.url_for(""), account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=service_sid
    ) as sms:
        sms.send(TO, "hello")

    assert received == [{"To": TO, "MessagingServiceSid": service_sid, "Body": "hello"}]


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (400, 21211, "The 'To' number +447700900123 is not a valid phone number."),
        (400, 21610, "Attempt to send to unsubscribed recipient"),
        (401, 20003, "Authenticate"),
    ],
)
def test_a_twilio_error_is_rejected_with_its_code_and_message(httpserver, sms, status, code, message):
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    httpserver.expect_request(MESSAGES_PATH, method="POST").respond_with_json(
        {"code": code, "message": message, "more_info": more_info, "status": status}, status=status
    )

    with pytest.raises(ProviderRejected) as caught:
        sms.send(TO, "hello")

    assert f"error {code}: {message}" in str(caught.value)
    assert caught.value.provider_code == str(code)
    assert caught.value.delivery.status_code == status


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_retryable(httpserver, sms, status):
    httpserver.expect_request(MESSAGES_PATH).respond_with_data("upstream trouble", status=status)

    with pytest.raises(ProviderUnavailable) as caught:
        sms.send(TO, "hello")

    assert caught.value.retry_after is None
    assert caught.value.delivery.status_code == status
    assert caught.value.delivery.response_excerpt == "upstream trouble"


def test_429_honours_retry_after_seconds(httpserver, sms):
    httpserver.expect_request(MESSAGES_PATH).respond_with_json(
        {"code": 20429, "message": "Too Many Requests", "status": 429}, status=429, headers={"Retry-After": "30"}
    )

    with pytest.raises(ProviderUnavailable) as caught:
        sms.send(TO, "hello")

    assert caught.value.retry_after == 30
    assert "error 20429: Too Many Requests" in str(caught.value)


def test_429_honours_retry_after_as_an_http_date(httpserver, sms):
    retry_at = datetime.now(UTC) + timedelta(seconds=120)
    httpserver.expect_request(MESSAGES_PATH).respond_with_data(
        "slow down", status=429, headers={"Retry-After": format_datetime(retry_at, usegmt=True)}
    )

    with pytest.raises(ProviderUnavailable) as caught:
        sms.send(TO, "hello")

    # The HTTP-date has whole seconds, so up to one second is lost to rounding.
    assert 115 < caught.value.retry_after <= 120


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Wed, 01 Jan 2031 00:02:00 GMT", 120.0),
        ("Wed, 01 Jan 2031 00:00:00 GMT", 0.0),
        ("Tue, 31 Dec 2030 23:00:00 GMT", 0.0),  # already past: retry now rather than never
        ("-5", None),
        ("soon", None),
        ("1e3", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header, now=datetime(2031, 1, 1, tzinfo=UTC)) == expected


def test_a_timeout_is_retryable_and_does_not_wait_long(httpserver):
    with (
        Stall() as stall,
        TwilioSMS(
            base_url=httpserver.url_for(""),
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            from_number=FROM,
            timeout=0.2,
        ) as sms,
    ):
        httpserver.expect_request(MESSAGES_PATH).respond_with_handler(stall)
        started = time.perf_counter()
        with pytest.raises(ProviderUnavailable, match="timed out") as caught:
            sms.send(TO, "hello")

    assert time.perf_counter() - started < 2
    assert caught.value.delivery.status_code is None


def test_a_refused_connection_is_retryable():
    with (
        TwilioSMS(
            base_url=f"http://127.0.0.1:{closed_port()}",
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            from_number=FROM,
        ) as sms,
        pytest.raises(ProviderUnavailable, match="could not be reached"),
    ):
        sms.send(TO, "hello")


@pytest.mark.parametrize("body", ["<html>gateway</html>", '{"sid": "SM1"', ""])
def test_a_201_that_is_not_json_is_retryable_with_a_clear_message(httpserver, sms, body):
    httpserver.expect_request(MESSAGES_PATH).respond_with_data(body, status=201, content_type="application/json")

    with pytest.raises(ProviderUnavailable, match="not valid JSON"):
        sms.send(TO, "hello")


def test_a_201_without_a_sid_is_retryable(httpserver, sms):
    httpserver.expect_request(MESSAGES_PATH).respond_with_json({"status": "queued"}, status=201)

    with pytest.raises(ProviderUnavailable, match="without a message sid"):
        sms.send(TO, "hello")


@pytest.mark.parametrize("to", ["4155550100", "+0155550100", "+1 415 555 0100", "+1415555010012345", "", None])
def test_a_recipient_that_is_not_e164_is_refused_before_any_request(httpserver, sms, to):
    with pytest.raises(MessageInvalid, match=r"E\.164"):
        sms.send(to, "hello")

    assert httpserver.log == []


def test_the_body_limit_is_twilios_1600_characters(httpserver, sms):
    httpserver.expect_request(MESSAGES_PATH).respond_with_handler(twilio_created)

    assert sms.send(TO, "x" * 1600).provider_message_id == MESSAGE_SID
    with pytest.raises(ValueError, match="1601 characters; Twilio's limit is 1600"):
        sms.send(TO, "x" * 1601)
    with pytest.raises(MessageInvalid, match="empty"):
        sms.send(TO, "  ")

    assert len(httpserver.log) == 1


def test_from_settings_reads_the_twilio_settings(httpserver, settings):
    settings.TWILIO_API_BASE = httpserver.url_for("")
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_FROM_NUMBER = FROM
    httpserver.expect_request(MESSAGES_PATH, method="POST").respond_with_handler(twilio_created)

    with TwilioSMS.from_settings() as sms:
        assert sms.send(TO, "hello").provider_message_id == MESSAGE_SID


def test_from_settings_without_credentials_is_a_permanent_error(settings):
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = ""
    settings.TWILIO_FROM_NUMBER = ""

    with pytest.raises(ProviderRejected, match="SMS is not configured: set TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER"):
        TwilioSMS.from_settings()


def test_a_from_number_that_is_neither_e164_nor_a_service_sid_is_a_configuration_error():
    with pytest.raises(ProviderRejected, match=r"TWILIO_FROM_NUMBER must be an E\.164 number"):
        TwilioSMS(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number="Kordant")
