"""Signature schemes, checked the way a receiver checks them: a real delivery to a local receiver, verified by
code that shares nothing with ours (the `standardwebhooks` package, `cryptography` with only the public keys
published at /api/v1/webhooks/keys, and the README's snippets run as written)."""

import base64
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError
from werkzeug import Response

from notifications import kinds
from notifications.models import WebhookEndpoint
from notifications.services import notify
from notifications.webhooks import SIGNATURE_HEADER, sign
from tests.factories import UserFactory
from tests.notifications import serve_in_turn

pytestmark = pytest.mark.django_db(transaction=True)

CONFIRMED = {"subscription_id": 7, "broker": "PeopleFinder"}
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(autouse=True)
def keys_dir(settings, tmp_path):
    """Each test starts with no project signing keys; generation on first use is on, as in development."""
    settings.WEBHOOK_SIGNING_KEYS_DIR = tmp_path / "webhook-keys"
    settings.WEBHOOK_SIGNING_KEYS_GENERATE = True
    return settings.WEBHOOK_SIGNING_KEYS_DIR


@pytest.fixture
def receive(httpserver):
    """Deliver one event to a fresh endpoint of `scheme` through the send job; return (endpoint, request)."""

    received = serve_in_turn(httpserver, "/hooks", Response("ok", status=200))

    def deliver(run_worker, scheme, **endpoint_fields):
        seen = len(received)
        fields = {"signature_scheme": scheme} if scheme else {}
        endpoint = WebhookEndpoint.objects.create(
            owner=UserFactory(), url=httpserver.url_for("/hooks"), **fields, **endpoint_fields
        )
        (notification,) = notify(endpoint.owner, kinds.REMOVEBROKERS_CONFIRMED, CONFIRMED, channels=["webhook"])
        run_worker()
        notification.refresh_from_db()
        assert notification.status == "sent", notification.error
        (request,) = received[seen:]
        return endpoint, request

    return deliver


def published_keys(client, scheme):
    """What a receiver learns from the public endpoint, without logging in."""
    response = client.get("/api/v1/webhooks/keys")
    assert response.status_code == 200
    return [key for key in response.json()["keys"] if key["scheme"] == scheme]


def readme_function(name):
    """A receiver snippet from the README, run as written: what customers copy must verify our deliveries."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (code,) = [block for block in blocks if f"def {name}(" in block]
    namespace: dict = {}
    exec(code, namespace)
    return namespace[name]


def headers_of(request):
    return {key: value for key, value in request.headers.items()}


# --- standard (Standard Webhooks, v1) -----------------------------------------------------------


def test_a_new_endpoint_signs_with_standard_webhooks_and_the_standardwebhooks_package_verifies_it(run_worker, receive):
    endpoint, request = receive(run_worker, scheme=None)  # the default for a new endpoint
    body, headers = request.get_data(), headers_of(request)

    assert endpoint.signature_scheme == "standard" and endpoint.secret.startswith("whsec_")
    assert headers["Webhook-Id"] == headers["Kordant-Delivery"]
    assert SIGNATURE_HEADER not in headers and "X-Webhook-Signature" not in headers
    assert Webhook(endpoint.secret).verify(body, headers) == json.loads(body)
    assert readme_function("verify_standard")(endpoint.secret, headers, body)

    with pytest.raises(WebhookVerificationError):  # a tampered body
        Webhook(endpoint.secret).verify(body.replace(b"PeopleFinder", b"PeopleFinde2"), headers)
    with pytest.raises(WebhookVerificationError):  # another endpoint's secret
        Webhook(WebhookEndpoint(owner=endpoint.owner).secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):  # the same request under another delivery id
        Webhook(endpoint.secret).verify(body, {**headers, "Webhook-Id": "ntf_999999"})
    with time_machine.travel(time.time() + 301):  # a replay past the tolerance
        with pytest.raises(WebhookVerificationError, match="too old"):
            Webhook(endpoint.secret).verify(body, headers)
        assert not readme_function("verify_standard")(endpoint.secret, headers, body)


def test_while_a_secret_is_replaced_each_one_signs_and_either_verifies():
    from notifications.models import new_webhook_secret
    from notifications.webhooks import signature_headers

    old, new = new_webhook_secret(), new_webhook_secret()
    body, now = b'{"a":1}', int(time.time())
    headers = signature_headers("standard", [new, old], "ntf_1", now, body)

    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (old, new):
        Webhook(secret).verify(body, headers)


def test_a_secret_from_before_standard_webhooks_cannot_be_given_the_standard_scheme(run_worker, httpserver):
    endpoint = WebhookEndpoint(owner=UserFactory(), url="https://h.example/k", secret="whsec_-_not-base64_at-all")
    with pytest.raises(ValidationError, match="cannot sign it"):
        endpoint.full_clean()
    endpoint.signature_scheme = "legacy"
    endpoint.full_clean()


def test_an_endpoint_whose_standard_secret_is_unusable_fails_before_anything_is_sent(run_worker, httpserver):
    endpoint = WebhookEndpoint.objects.create(owner=UserFactory(), url=httpserver.url_for("/hooks"), secret="whsec_x")
    (notification,) = notify(endpoint.owner, kinds.REMOVEBROKERS_CONFIRMED, CONFIRMED, channels=["webhook"])
    run_worker()
    notification.refresh_from_db()
    assert notification.status == "failed" and "Standard Webhooks secret" in notification.reason
    assert httpserver.log == []


# --- standard-ed25519 (Standard Webhooks, v1a) ---------------------------------------------------


def test_an_ed25519_endpoint_verifies_with_only_the_published_public_key(run_worker, receive, client):
    endpoint, request = receive(run_worker, "standard-ed25519")
    body, headers = request.get_data(), headers_of(request)
    (key,) = published_keys(client, "standard-ed25519")
    verify = readme_function("verify_standard_ed25519")

    assert re.fullmatch(r"v1a,[A-Za-z0-9+/]{86}==", headers["Webhook-Signature"])
    assert key["signing"] and key["whpk"].startswith("whpk_") and "PRIVATE" not in json.dumps(key)
    assert verify([key["whpk"]], headers, body)
    # The same check by hand with cryptography and the PEM form of the key.
    content = f"{headers['Webhook-Id']}.{headers['Webhook-Timestamp']}.".encode() + body
    load_pem_public_key(key["pem"].encode()).verify(base64.b64decode(headers["Webhook-Signature"][4:]), content)

    assert not verify([key["whpk"]], headers, body + b" ")
    assert not verify([key["whpk"]], {**headers, "Webhook-Id": "ntf_999999"}, body)
    with time_machine.travel(time.time() + 301):
        assert not verify([key["whpk"]], headers, body)
    # The Standard Webhooks symmetric verifier does not take an ed25519 signature for a v1 one.
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(body, headers)


# --- rsa-sha256 ----------------------------------------------------------------------------------


def rsa_verifies(pem, request, body):
    """An RSA receiver written from the README's description alone, with cryptography."""
    fields = dict(part.partition("=")[::2] for part in request.headers["X-Webhook-Signature"].split(","))
    if abs(time.time() - int(fields["t"])) > 300:
        return False
    content = f"{request.headers['Kordant-Delivery']}.{fields['t']}.".encode() + body
    try:
        load_pem_public_key(pem.encode()).verify(
            base64.b64decode(fields["sig"]), content, padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return False
    return True


def test_an_rsa_endpoint_verifies_with_only_the_published_public_key(run_worker, receive, client):
    _, request = receive(run_worker, "rsa-sha256")
    body = request.get_data()
    (key,) = published_keys(client, "rsa-sha256")
    header = request.headers["X-Webhook-Signature"]

    assert re.fullmatch(rf"keyid={re.escape(key['kid'])},t=\d{{10}},sig=[A-Za-z0-9+/]{{342}}==", header)
    assert "Webhook-Signature" not in request.headers and SIGNATURE_HEADER not in request.headers
    assert load_pem_public_key(key["pem"].encode()).key_size == 2048
    assert rsa_verifies(key["pem"], request, body)
    verify = readme_function("verify_rsa_sha256")
    assert verify({key["kid"]: key["pem"]}, request.headers, body)

    assert not rsa_verifies(key["pem"], request, body.replace(b"PeopleFinder", b"PeopleFinde2"))
    assert not verify({key["kid"]: key["pem"]}, {**headers_of(request), "Kordant-Delivery": "ntf_9"}, body)
    assert not verify({"another-kid": key["pem"]}, request.headers, body)  # an unknown key id
    with time_machine.travel(time.time() + 301):
        assert not rsa_verifies(key["pem"], request, body)
        assert not verify({key["kid"]: key["pem"]}, request.headers, body)


# --- rotation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "algorithm"), [("rsa-sha256", "rsa"), ("standard-ed25519", "ed25519")])
def test_after_a_rotation_both_keys_are_published_and_the_newest_signs(run_worker, receive, client, scheme, algorithm):
    call_command("webhook_keys", "rotate", "--algorithm", algorithm)
    with time_machine.travel(timezone.now() + timedelta(days=90)):
        call_command("webhook_keys", "rotate", "--algorithm", algorithm)
    new, old = published_keys(client, scheme)
    assert (new["signing"], old["signing"]) == (True, False) and new["created_at"] > old["created_at"]

    _, request = receive(run_worker, scheme)
    body = request.get_data()
    if scheme == "rsa-sha256":
        assert f"keyid={new['kid']}," in request.headers["X-Webhook-Signature"]
        assert rsa_verifies(new["pem"], request, body) and not rsa_verifies(old["pem"], request, body)
    else:
        verify = readme_function("verify_standard_ed25519")
        assert verify([new["whpk"]], request.headers, body) and not verify([old["whpk"]], request.headers, body)
        assert verify([old["whpk"], new["whpk"]], request.headers, body)  # a receiver trying every key

    with pytest.raises(CommandError, match="rotate first"):
        call_command("webhook_keys", "retire", new["kid"])
    call_command("webhook_keys", "retire", old["kid"])
    assert [key["kid"] for key in published_keys(client, scheme)] == [new["kid"]]


@pytest.mark.parametrize("kid", ["../../etc/passwd", "rsa-20260101T000000Z-abcd", "", "ed25519-2026-x"])
def test_retiring_a_key_that_is_not_there_or_not_a_key_id_touches_nothing(keys_dir, kid):
    call_command("webhook_keys", "rotate", "--algorithm", "rsa")
    before = sorted(keys_dir.iterdir())
    with pytest.raises(CommandError, match="no webhook signing key"):
        call_command("webhook_keys", "retire", kid)
    assert sorted(keys_dir.iterdir()) == before


def test_processes_generating_the_first_key_at_once_make_one(keys_dir):
    from notifications.signing_keys import signing_key_current

    with ThreadPoolExecutor(max_workers=4) as pool:
        kids = set(pool.map(lambda _: signing_key_current("rsa").kid, range(4)))
    assert len(kids) == 1 and len(list(keys_dir.glob("rsa-*.pem"))) == 1


def test_a_rotation_reaches_a_worker_that_already_signed_with_the_old_key(run_worker, receive, keys_dir):
    _, first = receive(run_worker, "rsa-sha256")
    call_command("webhook_keys", "rotate", "--algorithm", "rsa")
    (newest,) = [p.stem for p in sorted(keys_dir.glob("rsa-*.pem"))[-1:]]
    _, second = receive(run_worker, "rsa-sha256")

    assert f"keyid={newest}," in second.headers["X-Webhook-Signature"]
    assert first.headers["X-Webhook-Signature"].split(",")[0] != second.headers["X-Webhook-Signature"].split(",")[0]


def test_without_keys_and_without_generation_nothing_is_published_and_deliveries_say_what_to_do(
    run_worker, httpserver, client, settings
):
    settings.WEBHOOK_SIGNING_KEYS_GENERATE = False
    assert client.get("/api/v1/webhooks/keys").json() == {"keys": []}
    endpoint = WebhookEndpoint.objects.create(
        owner=UserFactory(), url=httpserver.url_for("/hooks"), signature_scheme="standard-ed25519"
    )
    (notification,) = notify(endpoint.owner, kinds.REMOVEBROKERS_CONFIRMED, CONFIRMED, channels=["webhook"])
    run_worker()
    notification.refresh_from_db()
    assert notification.status == "failed"
    assert "no ed25519 webhook signing key" in notification.reason and "webhook_keys rotate" in notification.reason
    assert httpserver.log == []


@pytest.mark.parametrize(
    ("name", "content", "complaint"),
    [
        ("ed25519-20260101T000000Z-abcd.pem", b"not a key", "cannot read"),
        ("my-key.pem", b"", "is not named"),
        ("rsa-20260101T000000Z-abcd.pem", None, "does not hold an rsa"),
    ],
)
def test_an_unreadable_key_file_stops_signing_loudly_instead_of_falling_back(keys_dir, name, content, complaint):
    from notifications.signing_keys import SigningKeyUnavailable, signing_key_current, webhook_signing_key_rotate

    webhook_signing_key_rotate("ed25519")
    if content is None:  # an ed25519 key under an RSA name
        content = next(keys_dir.glob("ed25519-*.pem")).read_bytes()
    (keys_dir / name).write_bytes(content)
    with pytest.raises(SigningKeyUnavailable, match=complaint):
        signing_key_current("ed25519")


# --- legacy ---------------------------------------------------------------------------------------


def test_a_legacy_endpoint_gets_todays_headers_byte_for_byte(run_worker, receive):
    endpoint, request = receive(run_worker, "legacy", secret="whsec_made_before_standard_webhooks")
    body = request.get_data()
    timestamp = int(request.headers[SIGNATURE_HEADER].split(",")[0].removeprefix("t="))
    delivery = request.headers["Kordant-Delivery"]

    assert {key.lower() for key, _ in request.headers.items()} == {
        "host",
        "accept",
        "accept-encoding",
        "connection",
        "user-agent",
        "content-length",
        "content-type",
        "kordant-event",
        "kordant-delivery",
        "kordant-signature",
    }
    assert request.headers[SIGNATURE_HEADER] == sign(endpoint.secret, timestamp, body)
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "Kordant-Webhooks/1"
    assert request.headers["Kordant-Event"] == "removebrokers.confirmed" and delivery.startswith("ntf_")
    verify = readme_function("verify_kordant_signature")
    assert verify(endpoint.secret, request.headers[SIGNATURE_HEADER], body)
    with time_machine.travel(time.time() + 301):
        assert not verify(endpoint.secret, request.headers[SIGNATURE_HEADER], body)


def test_the_migration_keeps_existing_endpoints_on_the_legacy_scheme_and_new_ones_get_standard():
    from django.db.migrations.executor import MigrationExecutor

    before = [("notifications", "0002_webhook_secret_encrypted")]
    owner = UserFactory()
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        old.get_model("notifications", "WebhookEndpoint").objects.create(
            owner_id=owner.pk, url="https://h.example/old", secret="whsec_from_before"
        )
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    existing = WebhookEndpoint.objects.get()
    assert (existing.signature_scheme, existing.secret) == ("legacy", "whsec_from_before")
    assert WebhookEndpoint.objects.create(owner=owner, url="https://h.example/new").signature_scheme == "standard"


# --- admin ----------------------------------------------------------------------------------------


def test_staff_choose_the_scheme_when_creating_an_endpoint_and_see_it_afterwards(admin_client):
    owner = UserFactory()
    add = admin_client.get("/admin/notifications/webhookendpoint/add/").content.decode()
    for scheme in ("standard", "standard-ed25519", "rsa-sha256", "legacy"):
        assert f'value="{scheme}"' in add
    assert 'value="standard" selected' in add

    response = admin_client.post(
        "/admin/notifications/webhookendpoint/add/",
        {"owner": owner.pk, "url": "https://hooks.example/k", "signature_scheme": "rsa-sha256", "kinds": "[]"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.signature_scheme == "rsa-sha256"

    page = admin_client.get(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert "RSA-SHA256 in X-Webhook-Signature" in page
    assert 'name="signature_scheme"' not in page  # fixed once made: a change would break the receiver
    assert endpoint.secret not in page and f"{endpoint.secret[:6]}…{endpoint.secret[-4:]}" in page
    listing = admin_client.get("/admin/notifications/webhookendpoint/").content.decode()
    assert "RSA-SHA256 in X-Webhook-Signature" in listing and endpoint.secret not in listing
