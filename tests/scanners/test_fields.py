"""Personal data, webhook secrets and API tokens are not in the database in clear (issue 16, item 9).

The proof is a raw dump of a lived-in database: `pg_dump` on PostgreSQL (as CI runs the suite
a second time), SQLite's own dump otherwise, grepped for every plaintext the test put in or
was given: names, e-mails, phones, addresses, birth dates, owner names, token keys and
webhook secrets. The code still reads them back: brokers get the person, webhooks are signed.
"""

import io
import re
import shutil
import sqlite3
import subprocess

import pytest
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from notifications.models import WebhookEndpoint
from notifications.webhooks import sign, verify_signature
from scanners.demo import COUNTY
from scanners.hometitle.models import Property
from scanners.hometitle.services import property_add
from scanners.removebrokers.models import PERSON_FIELDS, DataBroker, RemovalRequest
from scanners.removebrokers.services import removal_requests_create
from tests.factories import SubscriptionFactory, UserFactory

PERSON = {
    "full_name": "Perpetua Quillfeather",
    "email": "perpetua.quill@private-mail.example",
    "phone": "+1 415 555 0142",
    "postal_address": "77 Larkspur Crescent, Bramblewick",
    "date_of_birth": "1961-03-17",
}
OWNERS = "Octavian Brindlecombe; Perpetua Quillfeather"
PASSWORD = "a long and careful passphrase"


def raw_dump() -> dict[str, str]:
    """{table: its rows as the raw dump writes them}: pg_dump's COPY blocks, or SQLite's INSERTs."""
    settings = connection.settings_dict
    tables: dict[str, list[str]] = {}
    if connection.vendor == "postgresql":
        if shutil.which("pg_dump") is None:
            pytest.skip("pg_dump is not installed (Debian package postgresql-client)")
        env = {"PGPASSWORD": settings.get("PASSWORD") or ""}
        command = [
            "pg_dump",
            "--no-owner",
            "-h",
            settings.get("HOST") or "127.0.0.1",
            "-p",
            str(settings.get("PORT") or 5432),
        ]
        command += ["-U", settings.get("USER") or "postgres", settings["NAME"]]
        dump = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=True).stdout
        current = None
        for line in dump.splitlines():
            if match := re.match(r"COPY public\.(\w+) ", line):
                current = match[1]
                tables[current] = [line]
            elif line == "\\.":
                current = None
            elif current:
                tables[current].append(line)
            else:
                tables.setdefault("", []).append(line)
    else:
        with sqlite3.connect(settings["NAME"]) as dump_connection:
            for line in dump_connection.iterdump():
                match = re.match(r'INSERT INTO "(\w+)"', line)
                tables.setdefault(match[1] if match else "", []).append(line)
    assert "scanners_removalrequest" in tables and "notifications_webhookendpoint" in tables, sorted(tables)
    return {table: "\n".join(lines) for table, lines in tables.items()}


@pytest.mark.django_db(transaction=True)  # the dump reads over its own connection: the rows must be committed
def test_a_raw_dump_of_a_lived_in_database_holds_no_personal_data_token_or_webhook_secret_in_clear(
    tmp_path, run_worker, tier_configs, settings, mailoutbox
):
    from jobs.demo import demo_data_ensure
    from scanners.demo import scanners_demo_ensure
    from scanners.removebrokers.demo import removebrokers_demo_ensure

    settings.REMOVEBROKERS_DEMO_URL = "http://127.0.0.1:9"  # nothing listens: API requests fail and retry
    demo_data_ensure()
    scanners_demo_ensure(tmp_path)
    removebrokers_demo_ensure()
    subscription = SubscriptionFactory(user=UserFactory(username="quill", email="account-login@example.net"))
    subscription.user.set_password(PASSWORD)
    subscription.user.save()
    broker = DataBroker.objects.create(
        name="Everything Registry",
        method=DataBroker.Method.EMAIL,
        endpoint="optout@everything-registry.example",
        required_fields=list(PERSON_FIELDS),
    )
    removal_requests_create(subscription, PERSON, brokers=[broker])
    property_add(subscription, address="3 Parcel Row", county=COUNTY, parcel_number="DEMO-9001", owner_names=OWNERS)
    endpoint = WebhookEndpoint.objects.create(owner=subscription.user, url="https://hooks.example.com/quill")
    tokens = [
        APIClient().post("/api/v1/auth/token/", {"username": "quill", "password": PASSWORD}).json()["token"]
        for _ in range(2)
    ]
    out = io.StringIO()
    call_command("drf_create_token", "quill", stdout=out)
    tokens.append(out.getvalue().split()[2])
    run_worker()  # scans, a RemoveBrokers pass (the e-mail broker is sent the person), notifications

    # The code still has the plaintext it needs.
    request = RemovalRequest.objects.get(broker=broker)
    assert request.person == PERSON and request.status == RemovalRequest.Status.SUBMITTED
    assert any(PERSON["postal_address"] in message.body for message in mailoutbox)
    assert Property.objects.get(parcel_number="DEMO-9001").owner_names == OWNERS
    secret = WebhookEndpoint.objects.get(pk=endpoint.pk).secret
    assert secret.startswith("whsec_") and verify_signature(secret, sign(secret, 1, b"{}"), b"{}", now=1)
    for token in tokens:
        response = APIClient().get("/api/v1/subscriptions/", HTTP_AUTHORIZATION=f"Token {token}")
        assert response.status_code == 200

    account_emails = {subscription.user.email} | {r.subscription.user.email for r in RemovalRequest.objects.all()}
    known = {f"token {token}": token for token in tokens}
    known |= {f"webhook secret of endpoint {e.pk}": e.secret for e in WebhookEndpoint.objects.all()}
    known |= {f"owner names of property {p.pk}": p.owner_names for p in Property.objects.all()}
    for removal in RemovalRequest.objects.all():
        known |= {f"{field} of removal request {removal.pk}": value for field, value in removal.person.items()}
    for owner in OWNERS.split("; "):
        known[f"owner {owner}"] = owner
    assert len(known) >= 20

    found = []
    for table, text in raw_dump().items():
        for what, value in known.items():
            if value not in text:
                continue
            # The login's own e-mail (auth_user, and the address its e-mail notifications go to) is the
            # account's, not the person's; the demo's requests reuse it. The person's own is checked.
            if table in ("auth_user", "notifications_notification") and value in account_emails:
                continue
            # County recorder data is public record: its grantors and grantees are the demo owners.
            if table == "scanners_recordeddocument" and what.startswith("owner names"):
                continue
            found.append(f"{what} ({value!r}) in {table or 'the schema'}")
    assert found == [], "\n".join(found)


@pytest.mark.django_db
def test_the_stored_values_are_fernet_tokens_that_rotated_keys_still_read(settings):
    from cryptography.fernet import Fernet

    subscription = SubscriptionFactory()
    broker = DataBroker.objects.create(
        name="B", method="manual", endpoint="https://b.example/optout", required_fields=list(PERSON_FIELDS)
    )
    removal_requests_create(subscription, PERSON, brokers=[broker])
    endpoint = WebhookEndpoint.objects.create(owner=subscription.user, url="https://hooks.example.com/k")
    with connection.cursor() as cursor:
        cursor.execute("SELECT person FROM scanners_removalrequest")
        (stored,) = cursor.fetchone()
    assert isinstance(stored, str) and stored.startswith("gAAAAA") and "Perpetua" not in stored
    # A new key put first: old rows still read, new writes use the new key.
    settings.IDENTIFIER_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.IDENTIFIER_ENCRYPTION_KEYS]
    assert RemovalRequest.objects.get().person == PERSON
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == endpoint.secret


@pytest.mark.django_db(transaction=True)
def test_the_migrations_encrypt_existing_rows_hash_old_tokens_and_unapply_back_to_clear():
    from django.db.migrations.executor import MigrationExecutor

    before = [("scanners", "0002_voiceprint_removebrokers"), ("notifications", "0001_initial"), ("api", None)]
    subscription = SubscriptionFactory()
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state([node for node in before if node[1]]).apps
        broker = old.get_model("scanners", "DataBroker").objects.create(name="B", method="manual", endpoint="x")
        old.get_model("scanners", "RemovalRequest").objects.create(
            subscription_id=subscription.pk, broker_id=broker.pk, person=PERSON
        )
        old.get_model("scanners", "Property").objects.create(
            subscription_id=subscription.pk,
            address="3 Parcel Row",
            county="c",
            parcel_number="1",
            parcel_key="c:1",
            owner_names=OWNERS,
        )
        old.get_model("notifications", "WebhookEndpoint").objects.create(
            owner_id=subscription.user_id, url="https://h.example/k", secret="whsec_from_before"
        )
        with connection.cursor() as cursor:  # DRF's authtoken table, as the project had it
            timestamp = "timestamp with time zone" if connection.vendor == "postgresql" else "datetime"
            cursor.execute(
                f"CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created {timestamp}, "
                "user_id integer NOT NULL)"
            )
            cursor.execute(
                "INSERT INTO authtoken_token VALUES (%s, %s, %s)",
                ["0123456789abcdef0123456789abcdef01234567", "2026-01-01T00:00:00+00:00", subscription.user_id],
            )

        def stored():
            with connection.cursor() as cursor:
                cursor.execute("SELECT person FROM scanners_removalrequest")
                person = cursor.fetchone()[0]
                cursor.execute("SELECT owner_names FROM scanners_property")
                owners = cursor.fetchone()[0]
                cursor.execute("SELECT secret FROM notifications_webhookendpoint")
                secret = cursor.fetchone()[0]
                cursor.execute("SELECT count(*) FROM authtoken_token")
                clear_tokens = cursor.fetchone()[0]
            return str(person), owners, secret, clear_tokens

        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
        person, owners, secret, clear_tokens = stored()
        assert "Perpetua" not in person and "Octavian" not in owners and "whsec" not in secret and clear_tokens == 0
        assert RemovalRequest.objects.get().person == PERSON
        assert Property.objects.get().owner_names == OWNERS
        assert WebhookEndpoint.objects.get().secret == "whsec_from_before"
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
        assert client.get("/api/v1/subscriptions/").status_code == 200  # the old key still works

        executor = MigrationExecutor(connection)
        executor.migrate(before)
        person, owners, secret, _ = stored()
        assert "Perpetua Quillfeather" in person and owners == OWNERS and secret == "whsec_from_before"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS authtoken_token")
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
