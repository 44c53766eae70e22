"""The HIBP-style client against a local server that speaks the documented breachedaccount API."""

import json
import time

import pytest
from werkzeug import Response

from jobs.errors import PermanentJobError, ProviderRejected, ProviderUnavailable
from scanners.darkwatch.identifiers import encrypt, identifier_hash
from scanners.darkwatch.providers import HIBPProvider, ItemQuery
from tests.provider_server import ProviderServer, hibp_answer

API_KEY = "hibp-test-key"
ADOBE = {
    "Name": "Adobe",
    "Title": "Adobe",
    "Domain": "adobe.com",
    "BreachDate": "2013-10-04",
    "DataClasses": ["Email addresses", "Password hints", "Passwords", "Usernames"],
    "IsVerified": True,
}


def item(pk: int, kind: str, value: str) -> ItemQuery:
    return ItemQuery(pk, kind, identifier_hash(kind, value), encrypt(value))


@pytest.fixture
def hibp(httpserver):
    with HIBPProvider(base_url=httpserver.url_for(""), api_key=API_KEY, user_agent="Kordant-Test/1") as provider:
        yield provider


def test_a_breached_account_comes_back_with_its_breaches(httpserver, hibp):
    httpserver.expect_oneshot_request(
        "/api/v3/breachedaccount/jane+tag@example.com",  # sent as jane%2Btag%40example.com
        query_string={"truncateResponse": "false"},
        headers={"hibp-api-key": API_KEY, "user-agent": "Kordant-Test/1"},
    ).respond_with_json([ADOBE])
    found = hibp.lookup([item(7, "email", "jane+tag@example.com")])
    assert len(found) == 1
    assert found[0].item_id == 7
    assert found[0].breach.name == "Adobe"
    assert found[0].breach.breach_date.isoformat() == "2013-10-04"
    assert "Passwords" in found[0].breach.data_classes
    httpserver.check_assertions()


def test_404_means_clean_and_phones_and_domains_are_not_asked(httpserver, hibp):
    httpserver.expect_oneshot_request("/api/v3/breachedaccount/clean_user").respond_with_data("", status=404)
    items = [item(1, "username", "clean_user"), item(2, "phone", "+14155550132"), item(3, "domain", "a.io")]
    found = hibp.lookup(items)
    assert found == []
    assert len(httpserver.log) == 1


def test_429_is_retryable_after_retry_after(httpserver, hibp):
    httpserver.expect_request("/api/v3/breachedaccount/jane@example.com").respond_with_response(
        Response(json.dumps({"statusCode": 429, "message": "Rate limit is exceeded."}), 429, {"Retry-After": "7"})
    )
    with pytest.raises(ProviderUnavailable, match="429: Rate limit is exceeded") as caught:
        hibp.lookup([item(1, "email", "jane@example.com")])
    assert caught.value.retry_after == 7


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_permanent_configuration_errors(httpserver, hibp, status):
    httpserver.expect_request("/api/v3/breachedaccount/jane@example.com").respond_with_json(
        {"statusCode": status, "message": "Access denied due to invalid hibp-api-key."}, status=status
    )
    with pytest.raises(ProviderRejected, match=f"{status}: Access denied"):
        hibp.lookup([item(1, "email", "jane@example.com")])


@pytest.mark.parametrize("body", ["[{not json", json.dumps({"Name": "Adobe"}), json.dumps([{"Title": "no name"}])])
def test_a_malformed_answer_is_a_clear_retryable_error(httpserver, hibp, body):
    httpserver.expect_request("/api/v3/breachedaccount/jane@example.com").respond_with_data(
        body, content_type="application/json"
    )
    with pytest.raises(ProviderUnavailable, match="Have I Been Pwned answered 200 with"):
        hibp.lookup([item(1, "email", "jane@example.com")])


def test_a_missing_api_key_is_a_configuration_error():
    with pytest.raises(PermanentJobError, match="HIBP_API_KEY is not set"):
        HIBPProvider(base_url="http://127.0.0.1:1", api_key="", user_agent="x")


# --- several requests in flight (HIBP_CONCURRENCY) ------------------------------------------


def test_requests_overlap_up_to_the_configured_concurrency_and_never_more():
    items = [item(n, "email", f"user{n}@example.com") for n in range(60)]
    with (
        ProviderServer(hibp_answer, delay=0.05) as server,
        HIBPProvider(base_url=server.url, api_key=API_KEY, user_agent="t", concurrency=8) as provider,
    ):
        found = provider.lookup(items)
    assert server.max_in_flight == 8  # overlapped, and never above the limit
    assert server.requests == 60
    # Every even-numbered account is in two breaches; results come in the items' order.
    assert [(hit.item_id, hit.breach.name) for hit in found] == [
        (n, name) for n in range(60) if n % 10 % 2 == 0 for name in ("Adobe", f"Leak{n % 10}")
    ]


def test_overlapped_lookups_find_exactly_what_the_sequential_one_finds():
    items = [item(n, kind, f"user{n}@example.com") for n, kind in enumerate(["email", "phone", "username"] * 15)]
    with ProviderServer(hibp_answer, delay=0.01) as server:
        with HIBPProvider(base_url=server.url, api_key=API_KEY, user_agent="t", concurrency=1) as provider:
            sequential = provider.lookup(items)
        assert server.max_in_flight == 1
        with HIBPProvider(base_url=server.url, api_key=API_KEY, user_agent="t", concurrency=6) as provider:
            overlapped = provider.lookup(items)
    assert overlapped == sequential and sequential


def test_one_failing_request_fails_the_lookup_as_the_loop_did():
    items = [item(n, "email", f"user{n}@example.com") for n in range(10)]
    items.insert(5, item(99, "email", "broken@example.com"))
    with (
        ProviderServer(hibp_answer, delay=0.01) as server,
        HIBPProvider(base_url=server.url, api_key=API_KEY, user_agent="t", concurrency=4) as provider,
        pytest.raises(ProviderUnavailable, match="503: down for maintenance"),
    ):
        provider.lookup(items)


def test_the_documented_rate_spaces_request_starts():
    items = [item(n, "email", f"user{n}@example.com") for n in range(6)]
    with (
        ProviderServer(hibp_answer, delay=0) as server,
        HIBPProvider(base_url=server.url, api_key=API_KEY, user_agent="t", concurrency=6, rate_limit="20/s") as hibp,
    ):
        started = time.monotonic()
        hibp.lookup(items)
        elapsed = time.monotonic() - started
    assert elapsed >= 5 * 0.05 - 0.01  # six starts 50 ms apart


def test_the_system_check_refuses_a_bad_provider_concurrency_or_rate(settings):
    from scanners.checks import provider_concurrency_check

    assert provider_concurrency_check() == []
    settings.HIBP_CONCURRENCY = 0
    settings.HOMETITLE_SODA_RATE_LIMIT = "fast"
    messages = [error.msg for error in provider_concurrency_check()]
    assert any(m.startswith("HIBP_CONCURRENCY must be") for m in messages)
    assert any(m.startswith("HOMETITLE_SODA_RATE_LIMIT: rate_limit must look like") for m in messages)
