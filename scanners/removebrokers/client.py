"""The broker opt-out API, over HTTP: submit an opt-out, search whether a person is still listed.

The protocol every API broker here speaks (the fictional demo brokers serve it, see
scanners/removebrokers/stub.py; a real broker with another shape gets its own method):

    POST <endpoint>   JSON {"request_id": "...", <the broker's required fields>}
                      Idempotency-Key: removal-<request id>-<submission number>
                      -> 2xx {"reference": "..."}
    GET <search_url>?<the same fields>
                      -> 200 {"listed": true|false}

Outcomes map through kordant.outbound: timeouts, connection errors, 408, 429 and 5xx
are `ProviderUnavailable` (tried again later), other 4xx `ProviderRejected` (the
request fails). The idempotency key is what keeps a POST whose answer was lost (a
timeout after the broker accepted) from filing twice with a broker that honours it.
"""

from __future__ import annotations

from typing import Any

import httpx

from jobs.errors import ProviderUnavailable
from kordant.outbound import ProviderClient, get, post, provider_error


class BrokerClient(ProviderClient):
    """One pooled HTTP client for every API broker a run talks to; close it when done."""

    def __init__(self, *, timeout: float = 10.0, max_connections: int = 20):
        super().__init__(
            httpx.Client(
                timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
                headers={"User-Agent": "Kordant-RemoveBrokers/1", "Accept": "application/json"},
                follow_redirects=False,
            )
        )
        self.timeout = timeout
        self.max_connections = max_connections

    @classmethod
    def from_settings(cls) -> BrokerClient:
        """A client with REMOVEBROKERS_HTTP_TIMEOUT."""
        from django.conf import settings

        return cls(timeout=settings.REMOVEBROKERS_HTTP_TIMEOUT)

    def submit(self, broker_name: str, endpoint: str, fields: dict[str, Any], *, idempotency_key: str) -> str:
        """POST the opt-out; the broker's reference for it."""
        reply = post(
            self._http,
            endpoint,
            provider=broker_name,
            json=fields,
            headers={"Idempotency-Key": idempotency_key},
            deadline_s=self.timeout,
        )
        body = reply.json()
        reference = body.get("reference") if isinstance(body, dict) else None
        if not isinstance(reference, str | int) or reference == "":
            raise provider_error(
                ProviderUnavailable,
                f"{broker_name} answered {reply.status_code} without a reference: {reply.excerpt!r}",
                delivery=reply.delivery(None),
            )
        return str(reference)

    def is_listed(self, broker_name: str, search_url: str, fields: dict[str, Any]) -> bool:
        """Ask the broker's search endpoint whether the person still appears."""
        reply = get(self._http, search_url, provider=broker_name, params=fields, deadline_s=self.timeout)
        body = reply.json()
        listed = body.get("listed") if isinstance(body, dict) else None
        if not isinstance(listed, bool):
            raise provider_error(
                ProviderUnavailable,
                f"{broker_name} search answered {reply.status_code} without a true/false 'listed': {reply.excerpt!r}",
                delivery=reply.delivery(None),
            )
        return listed
