"""What a watched identifier becomes before it is stored: normalized, encrypted, hashed and masked.

The raw value never reaches the database. `WatchlistItem` keeps the Fernet token (so the
HTTP providers can ask about the value), the keyed hash (so the local breach corpus can be
matched without decrypting anything) and the masked form people see in the admin and API.

The hash is HMAC-SHA256 of "<kind>:<normalized value>" keyed with IDENTIFIER_HASH_KEY: an
attacker with the database but not the key cannot test guesses against it. Changing that
key means re-importing the corpus and re-saving every item; encryption keys rotate freely
(IDENTIFIER_ENCRYPTION_KEYS: the first encrypts, all decrypt).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from scanners.imports import shown  # values quoted in a message are cut short: one may be 100 KB

KINDS = ("email", "phone", "username", "domain")
# Deliberately simple: it decides what is rejected, not how values match (both sides normalize alike),
# and an import hashes millions of addresses.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[a-z0-9-]+(\.[a-z0-9-]+)+$")
_USERNAME = re.compile(r"^[^\s@]{1,64}$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class IdentifierInvalid(ValueError):
    """The value is not a valid identifier of its kind; the message says why."""


@dataclass(frozen=True)
class Identifier:
    kind: str
    value: str  # normalized

    @property
    def digest(self) -> bytes:
        return identifier_hash(self.kind, self.value)

    @property
    def masked(self) -> str:
        return mask(self.kind, self.value)


def normalize(kind: str, raw: str) -> Identifier:
    """The canonical form of `raw` as an identifier of `kind`, or IdentifierInvalid."""
    if kind not in KINDS:
        raise IdentifierInvalid(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    return Identifier(kind, normalizer(kind)(raw))


def normalizer(kind: str):
    """A fast `raw -> normalized value` for one kind, for imports that normalize millions of values."""
    clean = _NORMALIZERS[kind]

    def normalize_one(raw: str) -> str:
        if not isinstance(raw, str) or not (raw := raw.strip()):
            raise IdentifierInvalid(f"{kind} is empty")
        return clean(raw)

    return normalize_one


def _email(raw: str) -> str:
    value = "".join(raw.split()).lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise IdentifierInvalid(f"{shown(raw)} is not an email address")
    return value


def _phone(raw: str) -> str:
    try:
        number = phonenumbers.parse(raw, settings.DARKWATCH_DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise IdentifierInvalid(f"{shown(raw)} is not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise IdentifierInvalid(f"{shown(raw)} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _username(raw: str) -> str:
    value = raw.casefold()
    if not _USERNAME.match(value):
        raise IdentifierInvalid(f"{shown(raw)} is not a username (1–64 characters, no spaces or @)")
    return value


def _domain(raw: str) -> str:
    value = raw.lower().removeprefix("https://").removeprefix("http://").split("/", 1)[0].rstrip(".")
    try:
        value = value.encode("idna").decode("ascii")
    except UnicodeError:
        raise IdentifierInvalid(f"{shown(raw)} is not a domain name") from None
    labels = value.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise IdentifierInvalid(f"{shown(raw)} is not a domain name")
    return value


_NORMALIZERS = {"email": _email, "phone": _phone, "username": _username, "domain": _domain}


def mask(kind: str, value: str) -> str:
    """What people see: enough to recognise their own identifier, not enough to learn someone else's."""
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[0]}***@{domain}"
    if kind == "phone":
        return f"{value[:2]}{'*' * (len(value) - 6)}{value[-4:]}"
    if kind == "domain":
        name, _, suffix = value.partition(".")
        return f"{name[0]}***.{suffix}"
    return f"{value[0]}***{value[-1]}" if len(value) > 2 else "***"


def identifier_hash(kind: str, value: str) -> bytes:
    """The keyed hash that matches an identifier against the breach corpus: HMAC-SHA256 of "kind:value"."""
    return hasher(kind)(value)


def hasher(kind: str):
    """A fast `value -> hash` for one kind, for imports that hash millions of values.

    HMAC-SHA256 from SHA-256 states primed with the padded key (RFC 2104), copied per value:
    the same bytes as `hmac.digest`, at a third of its cost, which OpenSSL 3 spends setting
    up the key anew on every call.
    """
    inner, outer = _hmac_states()
    prefix = f"{kind}:".encode()

    def digest(value: str) -> bytes:
        step = inner.copy()
        step.update(prefix + value.encode())
        final = outer.copy()
        final.update(step.digest())
        return final.digest()

    return digest


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise IdentifierInvalid(
            "stored identifier cannot be decrypted: none of IDENTIFIER_ENCRYPTION_KEYS made it"
        ) from None


@cache
def _hmac_states():
    key = settings.IDENTIFIER_HASH_KEY.encode()
    if len(key) > 64:  # SHA-256's block size
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key))


@cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.IDENTIFIER_ENCRYPTION_KEYS])


def keys_changed(**kwargs) -> None:
    """Forget the cached keys (connected to setting_changed, so tests can swap keys)."""
    if kwargs.get("setting") in {"IDENTIFIER_HASH_KEY", "IDENTIFIER_ENCRYPTION_KEYS", None}:
        _hmac_states.cache_clear()
        _fernet.cache_clear()
