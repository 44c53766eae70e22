"""Webhook signature schemes: which headers sign the exact body bytes, per endpoint.

`WebhookEndpoint.signature_scheme` is one of:

- `standard` (new endpoints' default): Standard Webhooks, symmetric (https://www.standardwebhooks.com).
      webhook-id: <delivery id>            (the same on every retry)
      webhook-timestamp: <unix seconds>
      webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">
  keyed with the bytes the endpoint's `whsec_<base64>` secret encodes. While a secret is being
  replaced, one `v1,` signature per secret, space-separated.
- `standard-ed25519`: Standard Webhooks, asymmetric: the same three headers, with
      webhook-signature: v1a,<base64 ed25519 signature of "<id>.<timestamp>.<body>">
  made with the project's newest ed25519 key (notifications/signing_keys.py). The receiver
  holds only public keys (`whpk_...`), published at /api/v1/webhooks/keys.
- `rsa-sha256`: for receivers that expect an RSA signature:
      X-Webhook-Signature: keyid=<key id>,t=<unix seconds>,sig=<base64 RSASSA-PKCS1-v1_5 SHA-256>
  over "<delivery id>.<t>.<body>" (the delivery id is the Kordant-Delivery header), made with
  the project's newest RSA-2048 key; the key id names the published public key that verifies it.
- `legacy`: today's `Kordant-Signature: t=<unix>,v1=<hex HMAC>` (notifications/webhooks.py),
  byte for byte, for the endpoints that existed before schemes did: their receivers keep working.

The delivery id is signed in every new scheme so that a captured request cannot be replayed
under another id to slip past the receiver's dedupe. Every scheme also sends Content-Type,
User-Agent, Kordant-Event and Kordant-Delivery.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings
from django.db import models

from notifications.signing_keys import ED25519, RSA, signing_key_current, signing_keys

STANDARD_SECRET_PREFIX = "whsec_"
# Standard Webhooks: a symmetric key is 24 to 64 random bytes.
STANDARD_SECRET_BYTES = (24, 64)
RSA_SIGNATURE_HEADER = "X-Webhook-Signature"


class SignatureScheme(models.TextChoices):
    STANDARD = "standard", "Standard Webhooks, HMAC-SHA256 (v1, whsec_ secret)"
    STANDARD_ED25519 = "standard-ed25519", "Standard Webhooks, ed25519 (v1a, project key)"
    RSA_SHA256 = "rsa-sha256", "RSA-SHA256 in X-Webhook-Signature (project key)"
    LEGACY = "legacy", "Legacy Kordant-Signature (t=, v1=)"


# The schemes signed with the project's keys, and the key algorithm each uses.
PROJECT_KEY_SCHEMES = {SignatureScheme.STANDARD_ED25519: ED25519, SignatureScheme.RSA_SHA256: RSA}


def standard_secret_key(secret: str) -> bytes:
    """The HMAC key a `whsec_<base64>` secret encodes; ValueError if it is not one (e.g. a legacy secret)."""
    try:
        key = base64.b64decode(secret.removeprefix(STANDARD_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    low, high = STANDARD_SECRET_BYTES
    if not secret.startswith(STANDARD_SECRET_PREFIX) or not low <= len(key) <= high:
        raise ValueError(f"a Standard Webhooks secret is whsec_ + base64 of {low}-{high} random bytes")
    return key


def standard_headers(secret: str | Sequence[str], delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Standard Webhooks symmetric headers for `body`; pass several secrets while replacing one."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise ValueError("a webhook secret must be a non-empty string")
    content = _signed_content(delivery_id, timestamp, body)
    signatures = (_b64(hmac.new(standard_secret_key(s), content, hashlib.sha256).digest()) for s in secrets)
    return _standard(delivery_id, timestamp, " ".join(f"v1,{signature}" for signature in signatures))


def standard_ed25519_headers(delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Standard Webhooks asymmetric headers for `body`, signed with the project's newest ed25519 key."""
    key = signing_key_current(ED25519)
    signature = key.private_key.sign(_signed_content(delivery_id, timestamp, body))
    return _standard(delivery_id, timestamp, f"v1a,{_b64(signature)}")


def rsa_sha256_headers(delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """X-Webhook-Signature for `body`, signed with the project's newest RSA key and naming it."""
    key = signing_key_current(RSA)
    signature = key.private_key.sign(_signed_content(delivery_id, timestamp, body), padding.PKCS1v15(), hashes.SHA256())
    return {RSA_SIGNATURE_HEADER: f"keyid={key.kid},t={int(timestamp)},sig={_b64(signature)}"}


def webhook_public_keys() -> list[dict]:
    """The public half of every project key, newest first per scheme, as /api/v1/webhooks/keys publishes them."""
    published = []
    for scheme, algorithm in PROJECT_KEY_SCHEMES.items():
        keys = signing_keys(algorithm)
        if not keys and settings.WEBHOOK_SIGNING_KEYS_GENERATE:
            keys = [signing_key_current(algorithm)]  # a fresh checkout publishes what it will sign with
        for position, key in enumerate(keys):
            entry = {
                "kid": key.kid,
                "scheme": scheme.value,
                "algorithm": algorithm,
                "created_at": key.created_at.isoformat().replace("+00:00", "Z"),
                "signing": position == 0,
                "pem": key.public_pem(),
            }
            if algorithm == ED25519:
                entry["whpk"] = key.whpk()
            published.append(entry)
    return published


def _signed_content(delivery_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{delivery_id}.{int(timestamp)}.".encode() + body


def _standard(delivery_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {"webhook-id": delivery_id, "webhook-timestamp": str(int(timestamp)), "webhook-signature": signature}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
