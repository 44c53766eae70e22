import pytest
from django.db import connection

from scanners.darkwatch import identifiers
from scanners.darkwatch.identifiers import IdentifierInvalid, normalize
from tests.scanners.factories import WatchlistItemFactory


@pytest.mark.parametrize(
    ("kind", "raw", "normalized", "masked"),
    [
        ("email", "  Jane.Doe@Example.COM ", "jane.doe@example.com", "j***@example.com"),
        ("phone", "(415) 555-0132", "+14155550132", "+1******0132"),
        ("phone", "+44 7911 123456", "+447911123456", "+4*******3456"),
        ("username", " DarkKnight99 ", "darkknight99", "d***9"),
        ("domain", "https://Example.org/login", "example.org", "e***.org"),
        ("domain", "bücher.de.", "xn--bcher-kva.de", "x***.de"),
    ],
)
def test_identifiers_are_normalized_and_masked(kind, raw, normalized, masked):
    identifier = normalize(kind, raw)
    assert identifier.value == normalized
    assert identifier.masked == masked


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [
        ("email", "not-an-email", "not an email address"),
        ("phone", "12", "not a valid phone number"),
        ("phone", "call me", "not a phone number"),
        ("username", "two words", "not a username"),
        ("domain", "localhost", "not a domain name"),
        ("email", "   ", "is empty"),
        ("fax", "123", "unknown kind"),
    ],
)
def test_bad_identifiers_are_refused_with_the_reason(kind, raw, message):
    with pytest.raises(IdentifierInvalid, match=message):
        normalize(kind, raw)


def test_the_same_identifier_written_differently_hashes_alike_and_kinds_do_not_collide():
    assert normalize("email", "JANE@example.com").digest == normalize("email", " jane@EXAMPLE.com").digest
    assert normalize("username", "jane").digest != normalize("email", "jane@example.com").digest
    assert identifiers.identifier_hash("username", "jane") != identifiers.identifier_hash("domain", "jane")


def test_the_hash_depends_on_the_key(settings):
    before = identifiers.identifier_hash("email", "jane@example.com")
    settings.IDENTIFIER_HASH_KEY = "another-key"
    assert identifiers.identifier_hash("email", "jane@example.com") != before


@pytest.mark.django_db
def test_the_raw_value_is_not_in_the_database():
    item = WatchlistItemFactory(kind="email", value="Secret.Person@Example.com")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM scanners_watchlistitem WHERE id = %s", [item.pk])
        stored = " ".join(str(bytes(value) if isinstance(value, memoryview) else value) for value in cursor.fetchone())
    assert "secret.person" not in stored.lower()
    assert "s***@example.com" in stored
    item.refresh_from_db()
    assert item.value == "secret.person@example.com"


@pytest.mark.django_db
def test_encryption_keys_rotate_old_values_stay_readable(settings):
    item = WatchlistItemFactory(kind="email", value="rotate@example.com")
    new_key = "q" * 43 + "="
    settings.IDENTIFIER_ENCRYPTION_KEYS = [new_key, *settings.IDENTIFIER_ENCRYPTION_KEYS]
    item.refresh_from_db()
    assert item.value == "rotate@example.com"
    settings.IDENTIFIER_ENCRYPTION_KEYS = [new_key]
    with pytest.raises(IdentifierInvalid, match="cannot be decrypted"):
        item.value  # noqa: B018


@pytest.mark.parametrize("key", ["short", "k" * 64, "a-key-longer-than-sha256s-block-" * 3])
def test_the_hash_is_hmac_sha256_of_kind_and_value(settings, key):
    import hashlib
    import hmac

    settings.IDENTIFIER_HASH_KEY = key
    expected = hmac.new(key.encode(), b"email:jane@example.com", hashlib.sha256).digest()
    assert identifiers.identifier_hash("email", "jane@example.com") == expected
