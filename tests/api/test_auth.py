import io

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
