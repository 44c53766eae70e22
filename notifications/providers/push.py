"""Mobile push through Expo's push API (`POST /--/api/v2/push/send`), which forwards to APNs and FCM.

Expo answers each message with a ticket: `{"status": "ok", "id": ...}` means Expo queued
it (the id is the receipt id for checking delivery later), `{"status": "error", "message":
..., "details": {"error": "DeviceNotRegistered"}}` means it refused that one message.
A refused ticket is `ProviderRejected` with `provider_code` set to Expo's error name, so
the caller can drop a dead token on DeviceNotRegistered; MessageRateExceeded alone is
retryable, because Expo asks for a back-off, not a change. A request-level failure comes
as `{"errors": [...]}` with a 4xx/5xx status and is mapped by status like any provider error.

Like Twilio, Expo takes no idempotency key: a retry after a timeout can push twice.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from jobs.errors import ProviderRejected, ProviderUnavailable
from kordant.outbound import Delivery, MessageInvalid, ProviderClient, Reply, post, provider_error

SEND_PATH = "/--/api/v2/push/send"
PUSH_TOKEN = re.compile(r"Expo(nent)?PushToken\[[^\[\]\s]+\]")
MAX_MESSAGES_PER_REQUEST = 100  # Expo's limit for one send request
RETRYABLE_TICKET_ERRORS = frozenset({"MessageRateExceeded"})


@dataclass(frozen=True)
class PushMessage:
    """One push notification to one Expo push token."""

    to: str
    title: str | None = None
    body: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The message as Expo's API expects it, leaving out what is unset."""
        if not isinstance(self.to, str) or not PUSH_TOKEN.fullmatch(self.to):
            raise MessageInvalid(
                f"push recipient must be an Expo push token like ExponentPushToken[...], got {self.to!r}"
            )
        if not (self.title or self.body or self.data):
            raise MessageInvalid("push message has no title, body or data")
        message: dict[str, Any] = {"to": self.to}
        if self.title:
            message["title"] = self.title
        if self.body:
            message["body"] = self.body
        if self.data:
            message["data"] = self.data
        return message


class ExpoPush(ProviderClient):
    """Sends push notifications through Expo, one message or a batch per request."""

    provider = "Expo"

    def __init__(
        self,
        *,
        base_url: str = "https://exp.host",
        access_token: str | None = None,
        timeout: float = 10,
        verify: ssl.SSLContext | bool = True,
    ):
        base_url = base_url.rstrip("/")
        # Accept the full send URL as well as the host, so either spelling of EXPO_PUSH_URL works.
        base_url = base_url.removesuffix(SEND_PATH)
        self.url = base_url + SEND_PATH
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if access_token:
            # Needed only when "enhanced push security" is on for the Expo project.
            headers["Authorization"] = f"Bearer {access_token}"
        super().__init__(httpx.Client(headers=headers, timeout=timeout, verify=verify))

    @classmethod
    def from_settings(cls, **overrides: Any) -> ExpoPush:
        """A client configured from Django settings EXPO_PUSH_URL and EXPO_ACCESS_TOKEN."""
        from django.conf import settings

        config = {
            "base_url": getattr(settings, "EXPO_PUSH_URL", "") or "https://exp.host",
            "access_token": getattr(settings, "EXPO_ACCESS_TOKEN", "") or None,
        }
        return cls(**{**config, **overrides})

    def send(self, to: str, title: str | None, body: str | None, data: dict[str, Any] | None = None) -> Delivery:
        """Push one message; the Delivery's provider_message_id is Expo's ticket (receipt) id."""
        message = PushMessage(to, title, body, data or {})
        reply, tickets = self._send(message.as_json(), expected=1)
        result = _ticket_result(tickets[0], message.to, reply)
        if isinstance(result, Exception):
            raise result
        return result

    def send_many(self, messages: Sequence[PushMessage]) -> list[Delivery | ProviderRejected | ProviderUnavailable]:
        """Push up to 100 messages in one request; one result per message, in order, errors returned not raised.

        A failure of the whole request (timeout, 5xx, 4xx) is still raised.
        """
        if not messages:
            raise MessageInvalid("no push messages to send")
        if len(messages) > MAX_MESSAGES_PER_REQUEST:
            raise MessageInvalid(
                f"{len(messages)} push messages; Expo takes at most {MAX_MESSAGES_PER_REQUEST} a request"
            )
        payload = [message.as_json() for message in messages]
        reply, tickets = self._send(payload, expected=len(messages))
        return [_ticket_result(ticket, message.to, reply) for ticket, message in zip(tickets, messages, strict=True)]

    def _send(self, payload: dict[str, Any] | list[dict[str, Any]], expected: int) -> tuple[Reply, list[Any]]:
        reply = post(self._http, self.url, provider=self.provider, describe=_describe_expo_errors, json=payload)
        answer = reply.json()
        tickets = answer.get("data") if isinstance(answer, dict) else None
        if isinstance(tickets, dict):  # a single message is answered with a single ticket
            tickets = [tickets]
        if not isinstance(tickets, list) or len(tickets) != expected:
            errors = answer.get("errors") if isinstance(answer, dict) else None
            detail = _describe_expo_errors(answer, reply.excerpt)[0] if errors else repr(reply.excerpt)
            raise provider_error(
                ProviderUnavailable,
                f"Expo answered {reply.status_code} without {expected} ticket(s): {detail}",
                delivery=reply.delivery(None),
            )
        return reply, tickets


def _ticket_result(ticket: Any, to: str, reply: Reply) -> Delivery | ProviderRejected | ProviderUnavailable:
    status = ticket.get("status") if isinstance(ticket, dict) else None
    if status == "ok" and isinstance(ticket.get("id"), str):
        return reply.delivery(ticket["id"])
    if status == "error":
        details = ticket.get("details")
        code = details.get("error") if isinstance(details, dict) else None
        message = ticket.get("message") or "no message"
        cls = ProviderUnavailable if code in RETRYABLE_TICKET_ERRORS else ProviderRejected
        label = f" ({code})" if code else ""
        return provider_error(
            cls, f"Expo refused the push to {to}{label}: {message}", delivery=reply.delivery(None), provider_code=code
        )
    return provider_error(
        ProviderUnavailable, f"Expo answered with an unreadable ticket: {ticket!r}", delivery=reply.delivery(None)
    )


def _describe_expo_errors(body: Any, excerpt: str) -> tuple[str, str | None]:
    # Request-level errors: {"errors": [{"code": "VALIDATION_ERROR", "message": "..."}]}
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        parts, codes = [], []
        for error in errors:
            if isinstance(error, dict):
                code = error.get("code")
                if code:
                    codes.append(str(code))
                parts.append(f"{code}: {error.get('message')}" if code else str(error.get("message")))
            else:
                parts.append(str(error))
        return "; ".join(parts), codes[0] if codes else None
    return excerpt or "(empty body)", None
