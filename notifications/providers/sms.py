"""SMS through Twilio's Programmable Messaging REST API (`POST /2010-04-01/Accounts/{sid}/Messages.json`).

Exactly-once is our job, not Twilio's: the Messages resource takes no idempotency key,
so a POST that is sent twice is two text messages. The caller records the returned
`sid` on its own row (unique per notification) and never sends a row that already has
one. What no client can settle is the ambiguous failure: a timeout or a garbled 2xx
after Twilio accepted the message is retryable here, and a retry then sends a second
text. The caller may prefer to treat those as final for SMS; `error.delivery.status_code`
is None for a timeout and 2xx for a garbled answer, so it can tell them apart.
"""

from __future__ import annotations

import re
import ssl
from typing import Any

import httpx

from jobs.errors import ProviderRejected, ProviderUnavailable
from kordant.outbound import Delivery, MessageInvalid, ProviderClient, post, provider_error

E164 = re.compile(r"\+[1-9]\d{1,14}")
# A Messaging Service SID; Twilio then picks the sending number from the service's pool.
MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
# Twilio refuses longer bodies (error 21617). Counted in Python characters; should Twilio count
# differently for some text, its 21617 still arrives as ProviderRejected.
MAX_BODY_CHARS = 1600


class TwilioSMS(ProviderClient):
    """Sends one SMS per call through Twilio."""

    provider = "Twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str = "https://api.twilio.com",
        timeout: float = 10,
        verify: ssl.SSLContext | bool = True,
    ):
        missing = [
            name
            for name, value in (
                ("TWILIO_ACCOUNT_SID", account_sid),
                ("TWILIO_AUTH_TOKEN", auth_token),
                ("TWILIO_FROM_NUMBER", from_number),
            )
            if not value
        ]
        if missing:
            raise provider_error(ProviderRejected, f"SMS is not configured: set {', '.join(missing)}")
        if not (E164.fullmatch(from_number) or MESSAGING_SERVICE_SID.fullmatch(from_number)):
            raise provider_error(
                ProviderRejected,
                f"SMS is not configured: TWILIO_FROM_NUMBER must be an E.164 number or a Messaging Service SID"
                f" (MG...), got {from_number!r}",
            )
        self.from_number = from_number
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        super().__init__(httpx.Client(auth=(account_sid, auth_token), timeout=timeout, verify=verify))

    @classmethod
    def from_settings(cls, **overrides: Any) -> TwilioSMS:
        """A client configured from Django settings (TWILIO_API_BASE, TWILIO_ACCOUNT_SID, ...)."""
        from django.conf import settings

        config = {
            "base_url": getattr(settings, "TWILIO_API_BASE", "") or "https://api.twilio.com",
            "account_sid": getattr(settings, "TWILIO_ACCOUNT_SID", ""),
            "auth_token": getattr(settings, "TWILIO_AUTH_TOKEN", ""),
            "from_number": getattr(settings, "TWILIO_FROM_NUMBER", ""),
        }
        return cls(**{**config, **overrides})

    def send(self, to: str, body: str) -> Delivery:
        """Send `body` to the E.164 number `to`; the Delivery's provider_message_id is Twilio's message SID."""
        if not isinstance(to, str) or not E164.fullmatch(to):
            raise MessageInvalid(f"SMS recipient must be an E.164 number like +14155550100, got {to!r}")
        if not body or not body.strip():
            raise MessageInvalid("SMS body is empty")
        if len(body) > MAX_BODY_CHARS:
            raise MessageInvalid(f"SMS body is {len(body)} characters; Twilio's limit is {MAX_BODY_CHARS}")

        sender = "MessagingServiceSid" if self.from_number.startswith("MG") else "From"
        reply = post(
            self._http,
            self.url,
            provider=self.provider,
            describe=_describe_twilio_error,
            data={"To": to, sender: self.from_number, "Body": body},
            headers={"Accept": "application/json"},
        )
        payload = reply.json()
        sid = payload.get("sid") if isinstance(payload, dict) else None
        if not isinstance(sid, str) or not sid:
            raise provider_error(
                ProviderUnavailable,
                f"Twilio answered {reply.status_code} without a message sid: {reply.excerpt!r}",
                delivery=reply.delivery(None),
            )
        return reply.delivery(sid)


def _describe_twilio_error(body: Any, excerpt: str) -> tuple[str, str | None]:
    # Twilio errors: {"code": 21211, "message": "...", "more_info": "https://www.twilio.com/docs/errors/21211", ...}
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        code = body.get("code")
        code = str(code) if code is not None else None
        prefix = f"error {code}: " if code else ""
        more_info = f" ({body['more_info']})" if isinstance(body.get("more_info"), str) else ""
        return f"{prefix}{body['message']}{more_info}", code
    return excerpt or "(empty body)", None
