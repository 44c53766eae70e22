import io
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.api.conftest import error_of
from tests.api.factories import JobRunFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def carol(db):
    user = UserFactory(username="carol")
    user.set_password("correct horse battery staple")
    user.save()
    return user


def test_a_token_from_username_and_password_authenticates_api_calls(carol):
    client = APIClient()
    response = client.post(
        "/api/v1/auth/token/", {"username": "carol", "password": "correct horse battery staple"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]

    assert client.get("/api/v1/subscriptions/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/subscriptions/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    refused = client.get("/api/v1/subscriptions/")
    assert refused.status_code == 401
    assert error_of(refused)["code"] == "authentication_failed"


def test_a_wrong_password_gets_no_token(carol):
    response = APIClient().post("/api/v1/auth/token/", {"username": "carol", "password": "guess"}, format="json")
    assert response.status_code == 400
    assert "Unable to log in" in error_of(response)["message"]


def test_token_requests_are_throttled_per_address(carol, settings, throttle_window):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "token": "3/minute"},
    }
    client = APIClient()
    codes = [client.post("/api/v1/auth/token/", {"username": "carol", "password": "x"}).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]


def test_the_management_command_makes_a_working_token(carol):
    out = io.StringIO()
    call_command("drf_create_token", "carol", stdout=out)
    token = out.getvalue().split()[2]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/subscriptions/").status_code == 200


def test_session_login_works_too_and_needs_csrf_for_writes(carol):
    run = JobRunFactory(user=carol, subscription=None)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(carol)
    assert client.get(f"/api/v1/jobs/{run.pk}/").status_code == 200
    # A browser session is open to cross-site request forgery; without the CSRF token a write is refused.
    refused = client.post(f"/api/v1/jobs/{run.pk}/cancel/")
    assert refused.status_code == 403
    assert "CSRF" in error_of(refused)["message"]


# --- the login throttle cannot be walked around (issue 16, item 5) ------------------------


def _rates(settings, **rates):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def test_a_new_forwarded_for_header_per_request_does_not_escape_the_login_throttle(carol, settings, throttle_window):
    _rates(settings, token="3/minute")
    client = APIClient()
    codes = [
        client.post(
            "/api/v1/auth/token/", {"username": "carol", "password": "x"}, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}"
        ).status_code
        for n in range(4)
    ]
    assert codes == [400, 400, 400, 429]
    right = client.post(
        "/api/v1/auth/token/",
        {"username": "carol", "password": "correct horse battery staple"},
        HTTP_X_FORWARDED_FOR="198.51.100.77",
    )
    assert right.status_code == 429


def test_failed_logins_are_counted_per_username_whatever_the_address(carol, settings, throttle_window):
    """Guesses spread over many addresses (a botnet) still lock the username, even for the right password."""
    _rates(settings, token="100/minute", login_failures="3/hour")
    client = APIClient()
    codes = [
        client.post(
            "/api/v1/auth/token/", {"username": "carol", "password": f"guess{n}"}, REMOTE_ADDR=f"203.0.113.{n}"
        ).status_code
        for n in range(3)
    ]
    assert codes == [400, 400, 400]
    right = client.post(
        "/api/v1/auth/token/",
        {"username": "carol", "password": "correct horse battery staple"},
        REMOTE_ADDR="198.51.100.1",
    )
    assert right.status_code == 429
    assert error_of(right)["code"] == "throttled"
    assert int(right["Retry-After"]) > 0
    # Someone else's account is not locked by carol's failures.
    dave = UserFactory(username="dave")
    dave.set_password("another fine passphrase")
    dave.save()
    other = client.post("/api/v1/auth/token/", {"username": "dave", "password": "another fine passphrase"})
    assert other.status_code == 200


def test_forwarded_headers_are_trusted_only_for_the_configured_number_of_proxies(carol, settings, throttle_window):
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0  # the default: the connection's own address
    _rates(settings, token="2/minute")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client = APIClient()

    def attempt(forwarded):
        return client.post(
            "/api/v1/auth/token/",
            {"username": "carol", "password": "x"},
            REMOTE_ADDR="10.0.0.2",  # the proxy
            HTTP_X_FORWARDED_FOR=forwarded,
        ).status_code

    # Behind one proxy the client is the address the proxy appended; what the client wrote before it is ignored.
    assert [attempt(f"{n}.{n}.{n}.{n}, 203.0.113.5") for n in range(1, 4)] == [400, 400, 429]
    assert attempt("203.0.113.6") == 400  # another client behind the same proxy has its own count


def test_wrong_tokens_meet_the_anonymous_throttle(carol, settings, throttle_window):
    """Guessing tokens is throttled like any anonymous request, before the 401."""
    _rates(settings, anon="3/minute")
    client = APIClient()
    codes = [client.get("/api/v1/subscriptions/", HTTP_AUTHORIZATION=f"Token guess{n}").status_code for n in range(4)]
    assert codes == [401, 401, 401, 429]


def test_num_proxies_comes_from_the_environment():
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.REST_FRAMEWORK['NUM_PROXIES'])",
        ],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "kordant.settings", "NUM_PROXIES": "2"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "2", probe.stderr
