import json
import time

import pytest
from werkzeug import Request, Response

from jobs.errors import ProviderRejected, ProviderUnavailable
from kordant.outbound import MessageInvalid
from notifications.providers.push import ExpoPush, PushMessage
from tests.notifications import Stall, closed_port

SEND_PATH = "/--/api/v2/push/send"
TOKEN = "ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]"
OTHER_TOKEN = "ExpoPushToken[yyyyyyyyyyyyyyyyyyyyyy]"
TICKET_ID = "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX"


def ok_ticket(ticket_id: str = TICKET_ID) -> dict:
    return {"status": "ok", "id": ticket_id}


def not_registered(token: str) -> dict:
    return {
        "status": "error",
        "message": f'"{token}" is not a registered push notification recipient',
        "details": {"error": "DeviceNotRegistered"},
    }


@pytest.fixture
def push(httpserver):
    client = ExpoPush(base_url=httpserver.url_for(""), access_token="expo-access-token", timeout=2)
    yield client
    client.close()


def test_send_posts_the_documented_json_and_returns_the_ticket_id(httpserver, push):
    received: list[Request] = []

    def expo(request: Request) -> Response:
        received.append(request)
        return Response(json.dumps({"data": ok_ticket()}), content_type="application/json")

    httpserver.expect_request(SEND_PATH, method="POST").respond_with_handler(expo)

    delivery = push.send(TOKEN, "Title fraud alert", "A deed was recorded on 12 Elm St.", {"alert_id": 42})

    assert delivery.provider_message_id == TICKET_ID
    assert delivery.status_code == 200
    (request,) = received
    assert request.headers["Authorization"] == "Bearer expo-access-token"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert request.get_json() == {
        "to": TOKEN,
        "title": "Title fraud alert",
        "body": "A deed was recorded on 12 Elm St.",
        "data": {"alert_id": 42},
    }


def test_without_an_access_token_no_authorization_header_is_sent(httpserver):
    httpserver.expect_request(SEND_PATH, method="POST").respond_with_json({"data": [ok_ticket()]})

    with ExpoPush(base_url=httpserver.url_for("")) as push:
        push.send(TOKEN, None, "hello")

    (request, _), *_ = httpserver.log
    assert "Authorization" not in request.headers
    assert request.get_json() == {"to": TOKEN, "body": "hello"}


def test_an_error_ticket_is_rejected_with_expos_message_and_error_code(httpserver, push):
    httpserver.expect_request(SEND_PATH).respond_with_json({"data": not_registered(TOKEN)})

    with pytest.raises(ProviderRejected, match="is not a registered push notification recipient") as caught:
        push.send(TOKEN, "t", "b")

    assert caught.value.provider_code == "DeviceNotRegistered"
    assert caught.value.delivery.status_code == 200


def test_a_rate_limited_ticket_is_retryable(httpserver, push):
    ticket = {"status": "error", "message": "too many", "details": {"error": "MessageRateExceeded"}}
    httpserver.expect_request(SEND_PATH).respond_with_json({"data": ticket})

    with pytest.raises(ProviderUnavailable, match="MessageRateExceeded") as caught:
        push.send(TOKEN, "t", "b")

    assert caught.value.provider_code == "MessageRateExceeded"


@pytest.mark.parametrize(("status", "raised"), [(400, ProviderRejected), (500, ProviderUnavailable)])
def test_request_level_errors_are_mapped_by_status(httpserver, push, status, raised):
    errors = [{"code": "PUSH_TOO_MANY_EXPERIENCE_IDS", "message": "All push notification messages must be the same"}]
    httpserver.expect_request(SEND_PATH).respond_with_json({"errors": errors}, status=status)

    with pytest.raises(raised, match="PUSH_TOO_MANY_EXPERIENCE_IDS: All push notification messages") as caught:
        push.send(TOKEN, "t", "b")

    assert caught.value.provider_code == "PUSH_TOO_MANY_EXPERIENCE_IDS"
    assert caught.value.delivery.status_code == status


def test_429_honours_retry_after(httpserver, push):
    httpserver.expect_request(SEND_PATH).respond_with_data("rate limited", status=429, headers={"Retry-After": "12"})

    with pytest.raises(ProviderUnavailable) as caught:
        push.send(TOKEN, "t", "b")

    assert caught.value.retry_after == 12


def test_a_timeout_is_retryable(httpserver):
    with Stall() as stall, ExpoPush(base_url=httpserver.url_for(""), timeout=0.2) as push:
        httpserver.expect_request(SEND_PATH).respond_with_handler(stall)
        started = time.perf_counter()
        with pytest.raises(ProviderUnavailable, match="timed out"):
            push.send(TOKEN, "t", "b")

    assert time.perf_counter() - started < 2


def test_a_refused_connection_is_retryable():
    with ExpoPush(base_url=f"http://127.0.0.1:{closed_port()}") as push, pytest.raises(ProviderUnavailable):
        push.send(TOKEN, "t", "b")


def test_a_200_that_is_not_json_is_retryable(httpserver, push):
    httpserver.expect_request(SEND_PATH).respond_with_data("<html>maintenance</html>", status=200)

    with pytest.raises(ProviderUnavailable, match="not valid JSON"):
        push.send(TOKEN, "t", "b")


@pytest.mark.parametrize("answer", [{}, {"data": []}, {"data": {"status": "maybe"}}, ["ok"]])
def test_a_200_without_a_readable_ticket_is_retryable(httpserver, push, answer):
    httpserver.expect_request(SEND_PATH).respond_with_json(answer)

    with pytest.raises(ProviderUnavailable):
        push.send(TOKEN, "t", "b")


def test_send_many_returns_one_result_per_message_in_order(httpserver, push):
    httpserver.expect_request(SEND_PATH, method="POST").respond_with_json(
        {"data": [ok_ticket("ticket-1"), not_registered(OTHER_TOKEN)]}
    )

    first, second = push.send_many([PushMessage(TOKEN, body="one"), PushMessage(OTHER_TOKEN, body="two")])

    assert first.provider_message_id == "ticket-1"
    assert isinstance(second, ProviderRejected)
    assert second.provider_code == "DeviceNotRegistered"
    (request, _), *_ = httpserver.log
    assert request.get_json() == [{"to": TOKEN, "body": "one"}, {"to": OTHER_TOKEN, "body": "two"}]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda push: push.send("fcm-device-token", "t", "b"), "Expo push token"),
        (lambda push: push.send(TOKEN, None, None), "no title, body or data"),
        (lambda push: push.send_many([]), "no push messages"),
        (lambda push: push.send_many([PushMessage(TOKEN, body="x")] * 101), "at most 100"),
    ],
)
def test_invalid_messages_are_refused_before_any_request(httpserver, push, call, message):
    with pytest.raises(MessageInvalid, match=message):
        call(push)

    assert httpserver.log == []


@pytest.mark.parametrize("push_url", ["{base}", "{base}/--/api/v2/push/send"])
def test_from_settings_accepts_the_host_or_the_full_send_url(httpserver, settings, push_url):
    settings.EXPO_PUSH_URL = push_url.format(base=httpserver.url_for("").rstrip("/"))
    settings.EXPO_ACCESS_TOKEN = "from-settings"
    httpserver.expect_request(SEND_PATH, method="POST").respond_with_json({"data": ok_ticket()})

    with ExpoPush.from_settings() as push:
        assert push.send(TOKEN, "t", "b").provider_message_id == TICKET_ID

    (request, _), *_ = httpserver.log
    assert request.headers["Authorization"] == "Bearer from-settings"
