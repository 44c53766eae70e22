'''Signed outbound webhooks: `WebhookSender.deliver` POSTs an event, `verify_signature` is the receiver's check.

Every delivery is a POST of compact JSON (sorted keys, UTF-8) with these headers:

    Content-Type: application/json
    User-Agent: Kordant-Webhooks/1
    Kordant-Event: <event kind>
    Kordant-Delivery: <delivery id>            (the same on every retry: receivers dedupe on it)
    Kordant-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body, keyed with the secret>

The timestamp is signed with the body, so a captured request cannot be replayed after the
tolerance (5 minutes) has passed. While a secret is being rotated, the header carries one
v1 per secret and a receiver accepts the request if any of them matches.

A receiver needs nothing but the standard library (README snippet):

    import hashlib, hmac, time

    def verify_kordant_signature(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
        """True if Kordant-Signature matches the raw body and was made within `tolerance` seconds."""
        pairs = [part.strip().partition("=") for part in header.split(",")]
        timestamps = [value for key, _, value in pairs if key == "t"]
        signatures = [value.encode() for key, _, value in pairs if key == "v1"]
        if not secret or len(timestamps) != 1 or not timestamps[0].isdecimal():
            return False
        if abs(time.time() - int(timestamps[0])) > tolerance:  # a replay, or a clock far off
            return False
        expected = hmac.new(secret.encode(), timestamps[0].encode() + b"." + body, hashlib.sha256)
        return any(hmac.compare_digest(expected.hexdigest().encode(), s) for s in signatures)

    # Django view: verify the raw bytes before parsing them, answer 2xx fast, dedupe on the delivery id.
    # if not verify_kordant_signature(SECRET, request.headers.get("Kordant-Signature", ""), request.body):
    #     return HttpResponse(status=400)

Delivery outcomes follow kordant.outbound: 2xx is success; a timeout, connection
error, 408, 429 or 5xx is `ProviderUnavailable` (retried, honouring Retry-After); any
other status is `ProviderRejected`. Redirects are not followed. Every error raised once
the request went out has `.delivery` with status_code (None if there was no answer),
duration_ms and the first 500 characters of the answer, so the caller can write one
delivery row per attempt. The 5 s timeout applies to connecting, sending and each read,
and the body read stops at 5 s overall.

Not done here: the URL is not checked against private or link-local addresses. If
customers can choose webhook URLs, put an egress guard in front (a transport that refuses
such addresses after DNS resolution) before exposing the feature.
'''

from __future__ import annotations

import hashlib
import hmac
import json
import re
import ssl
import time
from collections.abc import Sequence
from typing import Any

import httpx

from jobs.errors import ProviderRejected
from kordant.outbound import Delivery, MessageInvalid, ProviderClient, post, provider_error
from notifications.signatures import (
    SignatureScheme,
    rsa_sha256_headers,
    standard_ed25519_headers,
    standard_headers,
)

SIGNATURE_HEADER = "Kordant-Signature"
USER_AGENT = "Kordant-Webhooks/1"
DEFAULT_TOLERANCE = 300
DELIVERY_TIMEOUT = 5.0
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
# Header values we put on the wire ourselves: visible ASCII only, so no header injection.
_HEADER_TOKEN = re.compile(r"[!-~]{1,200}")


class SignatureInvalid(ValueError):
    """A signature header does not prove that this body came from us recently; the message says why."""


def sign(secret: str | Sequence[str], timestamp: int, body: bytes) -> str:
    """The Kordant-Signature value for `body` at `timestamp`; pass several secrets while rotating."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets or not all(secrets):
        raise ValueError("a webhook secret must be a non-empty string")
    signatures = ",".join(f"v1={_digest(key, timestamp, body)}" for key in secrets)
    return f"t={int(timestamp)},{signatures}"


def check_signature(
    secret: str, header: str | None, body: bytes, tolerance: int = DEFAULT_TOLERANCE, now: float | None = None
) -> None:
    """Raise SignatureInvalid unless `header` signs `body` with `secret` within `tolerance` seconds of `now`."""
    if not secret:
        # An empty key would let anyone compute a valid signature: never accept one.
        raise SignatureInvalid("no secret configured")
    timestamp, candidates = _parse_header(header)
    age = (time.time() if now is None else now) - timestamp
    if age > tolerance:
        raise SignatureInvalid(f"timestamp is {age:.0f} s old, beyond the {tolerance} s tolerance")
    if -age > tolerance:
        raise SignatureInvalid(f"timestamp is {-age:.0f} s in the future, beyond the {tolerance} s tolerance")
    expected = _digest(secret, timestamp, body)
    # Compare against every candidate without stopping early, in constant time for each.
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    if not any(matches):
        raise SignatureInvalid("no v1 signature matches the body")


def verify_signature(
    secret: str, header: str | None, body: bytes, tolerance: int = DEFAULT_TOLERANCE, now: float | None = None
) -> bool:
    """True if `header` signs `body` with `secret` within `tolerance` seconds of `now` (default: the clock)."""
    try:
        check_signature(secret, header, body, tolerance=tolerance, now=now)
    except SignatureInvalid:
        return False
    return True


def encode_payload(payload: dict[str, Any]) -> bytes:
    """The exact bytes we sign and send: compact JSON, sorted keys, UTF-8, no NaN."""
    try:
        return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise MessageInvalid(f"webhook payload is not JSON-serialisable: {exc}") from exc


class WebhookSender(ProviderClient):
    """Delivers signed webhook events, reusing connections across deliveries."""

    def __init__(self, timeout: float = DELIVERY_TIMEOUT, verify: ssl.SSLContext | bool = True):
        self.timeout = timeout
        super().__init__(
            httpx.Client(
                timeout=timeout,
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
                verify=verify,
                # A fan-out batch keeps up to 64 deliveries in flight (NOTIFICATIONS_BATCH_CONCURRENCY):
                # httpx's default keeps 20 connections alive, so the rest would reconnect on every event.
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=64),
            )
        )

    def deliver(
        self,
        url: str,
        secret: str | Sequence[str],
        event_kind: str,
        delivery_id: str,
        payload: dict[str, Any],
        scheme: str = SignatureScheme.LEGACY,
    ) -> Delivery:
        """POST one event signed by `scheme` to `url`; a 2xx answer is success, anything else raises (see above)."""
        target = _checked_url(url)
        for name, value in (("event kind", event_kind), ("delivery id", delivery_id)):
            if not isinstance(value, str) or not _HEADER_TOKEN.fullmatch(value):
                raise MessageInvalid(f"webhook {name} must be 1-200 visible ASCII characters, got {value!r}")
        body = encode_payload(payload)
        try:
            signed = signature_headers(scheme, secret, delivery_id, int(time.time()), body)
        except ValueError as exc:
            raise provider_error(ProviderRejected, f"webhook for {url} is not configured: {exc}") from exc

        reply = post(
            self._http,
            target,
            provider=f"webhook receiver {target.host}",
            deadline_s=self.timeout,
            content=body,
            headers={
                "Content-Type": "application/json",
                "Kordant-Event": event_kind,
                "Kordant-Delivery": delivery_id,
                **signed,
            },
        )
        return reply.delivery(None)


def signature_headers(
    scheme: str, secret: str | Sequence[str], delivery_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The headers that sign `body` by an endpoint's scheme (notifications/signatures.py); ValueError if it cannot."""
    if scheme == SignatureScheme.LEGACY:
        return {SIGNATURE_HEADER: sign(secret, timestamp, body)}
    if scheme == SignatureScheme.STANDARD:
        return standard_headers(secret, delivery_id, timestamp, body)
    if scheme == SignatureScheme.STANDARD_ED25519:
        return standard_ed25519_headers(delivery_id, timestamp, body)
    if scheme == SignatureScheme.RSA_SHA256:
        return rsa_sha256_headers(delivery_id, timestamp, body)
    raise ValueError(f"unknown signature scheme {scheme!r}")


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{int(timestamp)}.".encode() + body, hashlib.sha256).hexdigest()


def _parse_header(header: str | None) -> tuple[int, list[str]]:
    if not isinstance(header, str) or not header.strip():
        raise SignatureInvalid("signature header is missing")
    timestamps: list[str] = []
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureInvalid(f"malformed signature header element {part.strip()!r}")
        if key == "t":
            timestamps.append(value.strip())
        elif key == "v1":
            # Anything that is not 64 hex digits cannot match; dropping it here also keeps
            # compare_digest on ASCII strings, which it requires.
            value = value.strip().lower()
            if _HEX_SHA256.fullmatch(value):
                candidates.append(value)
        # Other keys (a future v2) are ignored, so receivers keep working when we add schemes.
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()):
        raise SignatureInvalid("signature header needs exactly one numeric t=")
    if not candidates:
        raise SignatureInvalid("signature header has no well-formed v1 signature")
    return int(timestamps[0]), candidates


def _checked_url(url: str) -> httpx.URL:
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise provider_error(ProviderRejected, f"webhook URL {url!r} is not a valid URL: {exc}") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise provider_error(ProviderRejected, f"webhook URL must be http(s)://host/..., got {url!r}")
    return target
