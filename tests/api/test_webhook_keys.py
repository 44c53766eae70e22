"""GET /api/v1/webhooks/keys: the public keys receivers verify our webhooks with, served to anyone, throttled."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def keys_dir(settings, tmp_path):
    settings.WEBHOOK_SIGNING_KEYS_DIR = tmp_path / "webhook-keys"
    settings.WEBHOOK_SIGNING_KEYS_GENERATE = False
    call_command("webhook_keys", "rotate", "--algorithm", "ed25519")
    call_command("webhook_keys", "rotate", "--algorithm", "rsa")


def test_anyone_gets_the_public_keys_and_nothing_private(client):
    response = client.get("/api/v1/webhooks/keys")

    assert response.status_code == 200 and response["Cache-Control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert [(key["scheme"], key["algorithm"], key["signing"]) for key in keys] == [
        ("standard-ed25519", "ed25519", True),
        ("rsa-sha256", "rsa", True),
    ]
    assert all(key["pem"].startswith("-----BEGIN PUBLIC KEY-----") for key in keys)
    assert keys[0]["whpk"].startswith("whpk_") and "whpk" not in keys[1]
    assert "PRIVATE" not in response.content.decode()


def test_a_stale_token_does_not_stand_between_a_receiver_and_the_keys(client):
    assert client.get("/api/v1/webhooks/keys", HTTP_AUTHORIZATION="Token nonsense").status_code == 200


def test_the_keys_are_in_the_contract_without_authentication(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/webhooks/keys"]["get"]
    assert "200" in operation["responses"] and "429" in operation["responses"]
    assert operation.get("security") in (None, [], [{}])
    assert schema["paths"]["/api/v1/jobs/"]["get"].get("security")  # others do name theirs


def test_anonymous_requests_for_the_keys_are_throttled(client, settings, throttle_window):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "anon": "3/minute"},
    }
    codes = [client.get("/api/v1/webhooks/keys").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_the_keys_cannot_be_changed_over_http(client, method):
    assert getattr(client, method)("/api/v1/webhooks/keys").status_code == 405
