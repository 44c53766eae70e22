import json
import re
import textwrap
import threading
import time

import pytest
from werkzeug import Request, Response

from jobs.errors import ProviderRejected, ProviderUnavailable
from kordant.outbound import MessageInvalid
from notifications import webhooks
from notifications.webhooks import SignatureInvalid, WebhookSender, check_signature, sign, verify_signature
from tests.notifications import Stall, closed_port

SECRET = "whsec_test_secret"
T = 1_700_000_000
BODY = b'{"alert_id":42,"kind":"darkwatch.alert"}'
PAYLOAD = {"kind": "darkwatch.alert", "alert_id": 42, "email": "zoë@example.com"}


# --- signing and verifying ---------------------------------------------------------------


def test_a_signature_verifies_with_the_same_secret_body_and_time():
    header = sign(SECRET, T, BODY)

    assert re.fullmatch(r"t=1700000000,v1=[0-9a-f]{64}", header)
    assert verify_signature(SECRET, header, BODY, now=T)


def test_an_altered_body_fails():
    assert not verify_signature(SECRET, sign(SECRET, T, BODY), BODY.replace(b"42", b"43"), now=T)


def test_an_altered_timestamp_fails():
    forged = sign(SECRET, T, BODY).replace(f"t={T}", f"t={T + 1}")

    assert not verify_signature(SECRET, forged, BODY, now=T)


def test_a_wrong_secret_fails():
    assert not verify_signature("another-secret", sign(SECRET, T, BODY), BODY, now=T)


@pytest.mark.parametrize(
    ("now", "valid"),
    [
        (T + 300, True),
        (T - 300, True),
        (T + 301, False),  # a replay after the tolerance
        (T - 301, False),  # from too far in the future
        (T + 86_400, False),
    ],
)
def test_the_timestamp_must_be_within_the_tolerance_either_way(now, valid):
    assert verify_signature(SECRET, sign(SECRET, T, BODY), BODY, now=now) is valid


def test_the_tolerance_is_configurable():
    header = sign(SECRET, T, BODY)

    assert verify_signature(SECRET, header, BODY, tolerance=30, now=T + 30)
    assert not verify_signature(SECRET, header, BODY, tolerance=30, now=T + 31)


def test_check_signature_says_why():
    header = sign(SECRET, T, BODY)

    with pytest.raises(SignatureInvalid, match="old"):
        check_signature(SECRET, header, BODY, now=T + 301)
    with pytest.raises(SignatureInvalid, match="future"):
        check_signature(SECRET, header, BODY, now=T - 301)
    with pytest.raises(SignatureInvalid, match="no v1 signature matches"):
        check_signature(SECRET, header, b"{}", now=T)


def test_any_one_of_several_v1_signatures_may_match_during_secret_rotation():
    header = sign(["new-secret", SECRET], T, BODY)

    assert header.count("v1=") == 2
    assert verify_signature(SECRET, header, BODY, now=T)
    assert verify_signature("new-secret", header, BODY, now=T)
    assert not verify_signature("third-secret", header, BODY, now=T)


def test_unknown_schemes_and_whitespace_are_tolerated():
    v1 = sign(SECRET, T, BODY).split(",")[1]

    assert verify_signature(SECRET, f" t={T} , v0=deadbeef, {v1.upper().replace('V1=', 'v1=')} ", BODY, now=T)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"t={T}",
        "v1=" + "a" * 64,
        f"t={T},t={T},v1=" + "a" * 64,
        f"t=soon,v1={'a' * 64}",
        f"t=1.7e9,v1={'a' * 64}",
        f"t={T},v1=zz",
        f"t={T},v1=ünïcödé",
        f"t={T},,v1={'a' * 64}",
    ],
)
def test_a_malformed_header_fails_without_raising(header):
    assert verify_signature(SECRET, header, BODY, now=T) is False


def test_an_empty_secret_never_verifies():
    header = f"t={T},v1=" + webhooks._digest("", T, BODY)

    assert not verify_signature("", header, BODY, now=T)
    with pytest.raises(ValueError, match="non-empty"):
        sign("", T, BODY)


def test_the_readme_snippet_verifies_our_signatures_and_rejects_replays():
    # The receiver code in the module docstring is what customers copy: run it as written.
    snippet = webhooks.__doc__.split("(README snippet):\n", 1)[1].split("\n    # Django view", 1)[0]
    namespace: dict = {}
    exec(textwrap.dedent(snippet), namespace)
    verify = namespace["verify_kordant_signature"]
    now = int(time.time())

    assert verify(SECRET, sign(SECRET, now, BODY), BODY)
    assert verify(SECRET, sign(["rotated", SECRET], now, BODY), BODY)
    assert not verify(SECRET, sign(SECRET, now, BODY), BODY + b" ")
    assert not verify("wrong", sign(SECRET, now, BODY), BODY)
    assert not verify(SECRET, sign(SECRET, now - 301, BODY), BODY)
    assert not verify(SECRET, sign(SECRET, now + 301, BODY), BODY)
    assert not verify(SECRET, "nonsense", BODY)
    assert not verify("", f"t={now},v1=" + webhooks._digest("", now, BODY), BODY)


# --- delivering -------------------------------------------------------------------------


@pytest.fixture
def sender():
    client = WebhookSender(timeout=2)
    yield client
    client.close()


def test_the_receiver_gets_the_headers_and_a_body_whose_signature_verifies(httpserver, sender):
    received: list[Request] = []
    httpserver.expect_request("/hooks/kordant", method="POST").respond_with_handler(
        lambda request: received.append(request) or Response("thanks", status=202)
    )

    delivery = sender.deliver(httpserver.url_for("/hooks/kordant"), SECRET, "darkwatch.alert", "dlv_0001", PAYLOAD)

    assert (delivery.status_code, delivery.response_excerpt, delivery.provider_message_id) == (202, "thanks", None)
    assert delivery.duration_ms > 0
    (request,) = received
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "Kordant-Webhooks/1"
    assert request.headers["Kordant-Event"] == "darkwatch.alert"
    assert request.headers["Kordant-Delivery"] == "dlv_0001"
    body = request.get_data()
    assert body == '{"alert_id":42,"email":"zoë@example.com","kind":"darkwatch.alert"}'.encode()
    assert json.loads(body) == PAYLOAD
    assert verify_signature(SECRET, request.headers["Kordant-Signature"], body)
    assert not verify_signature("other", request.headers["Kordant-Signature"], body)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_retryable_and_records_the_attempt(httpserver, sender, status):
    httpserver.expect_request("/hook").respond_with_data("E" * 2000, status=status)

    with pytest.raises(ProviderUnavailable) as caught:
        sender.deliver(httpserver.url_for("/hook"), SECRET, "report.ready", "dlv_2", PAYLOAD)

    delivery = caught.value.delivery
    assert delivery.status_code == status
    assert delivery.response_excerpt == "E" * 500
    assert delivery.duration_ms > 0


def test_429_honours_retry_after(httpserver, sender):
    httpserver.expect_request("/hook").respond_with_data("busy", status=429, headers={"Retry-After": "90"})

    with pytest.raises(ProviderUnavailable) as caught:
        sender.deliver(httpserver.url_for("/hook"), SECRET, "report.ready", "dlv_3", PAYLOAD)

    assert caught.value.retry_after == 90
    assert caught.value.delivery.status_code == 429


@pytest.mark.parametrize("status", [400, 404, 410])
def test_a_client_error_is_permanent_and_carries_the_receivers_message(httpserver, sender, status):
    httpserver.expect_request("/hook").respond_with_json({"error": "unknown event kind"}, status=status)

    with pytest.raises(ProviderRejected, match="unknown event kind") as caught:
        sender.deliver(httpserver.url_for("/hook"), SECRET, "report.ready", "dlv_4", PAYLOAD)

    assert caught.value.delivery.status_code == status
    assert "unknown event kind" in caught.value.delivery.response_excerpt


def test_a_redirect_is_not_followed(httpserver, sender):
    httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/new"})
    httpserver.expect_request("/new").respond_with_data("ok")

    with pytest.raises(ProviderRejected, match="redirect to /new"):
        sender.deliver(httpserver.url_for("/old"), SECRET, "report.ready", "dlv_5", PAYLOAD)

    assert [request.path for request, _ in httpserver.log] == ["/old"]


def test_a_timeout_is_retryable(httpserver):
    with Stall() as stall, WebhookSender(timeout=0.2) as sender:
        httpserver.expect_request("/hook").respond_with_handler(stall)
        started = time.perf_counter()
        with pytest.raises(ProviderUnavailable, match="timed out") as caught:
            sender.deliver(httpserver.url_for("/hook"), SECRET, "report.ready", "dlv_6", PAYLOAD)

    assert time.perf_counter() - started < 2
    assert caught.value.delivery.status_code is None


def test_a_receiver_dripping_its_body_is_cut_off_at_the_deadline(httpserver):
    stop = threading.Event()

    def drip(request: Request) -> Response:
        def chunks():
            # A byte every 50 ms never trips the per-read timeout, only the overall deadline;
            # bounded, so a missing deadline fails the test instead of hanging it.
            for _ in range(40):
                if stop.wait(0.05):
                    return
                yield b"."

        return Response(chunks(), status=200)

    httpserver.expect_request("/hook").respond_with_handler(drip)
    try:
        with WebhookSender(timeout=0.3) as sender:
            started = time.perf_counter()
            with pytest.raises(ProviderUnavailable, match="timed out"):
                sender.deliver(httpserver.url_for("/hook"), SECRET, "report.ready", "dlv_7", PAYLOAD)
            assert time.perf_counter() - started < 1.5
    finally:
        stop.set()


def test_a_refused_connection_is_retryable(sender):
    with pytest.raises(ProviderUnavailable, match="could not be reached"):
        sender.deliver(f"http://127.0.0.1:{closed_port()}/hook", SECRET, "report.ready", "dlv_8", PAYLOAD)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "file:///etc/passwd", "javascript:alert(1)", "/relative/path", "http://", ""]
)
def test_only_http_urls_are_accepted(sender, url):
    with pytest.raises(ProviderRejected, match="webhook URL"):
        sender.deliver(url, SECRET, "report.ready", "dlv_9", PAYLOAD)


def test_an_empty_secret_is_a_configuration_error(httpserver, sender):
    with pytest.raises(ProviderRejected, match="not configured"):
        sender.deliver(httpserver.url_for("/hook"), "", "report.ready", "dlv_10", PAYLOAD)

    assert httpserver.log == []


@pytest.mark.parametrize(
    ("event_kind", "delivery_id", "payload"),
    [
        ("report.ready\r\nX-Injected: 1", "dlv", PAYLOAD),
        ("report.ready", "", PAYLOAD),
        ("report.ready", "dlv", {"when": object()}),
        ("report.ready", "dlv", {"score": float("nan")}),
    ],
)
def test_unsendable_events_are_refused_before_any_request(httpserver, sender, event_kind, delivery_id, payload):
    with pytest.raises(MessageInvalid):
        sender.deliver(httpserver.url_for("/hook"), SECRET, event_kind, delivery_id, payload)

    assert httpserver.log == []
