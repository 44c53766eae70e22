"""Where DarkWatch learns that an identifier was breached. Every source answers the same question:
given a batch of watched items, which breaches contain which of them?

- `CorpusProvider`: the local breach corpus (`manage.py import_breaches`), matched by keyed
  hash in one query per batch; it never sees a plaintext identifier.
- `HIBPProvider`: a Have I Been Pwned–style breached-account API
  (`GET /api/v3/breachedaccount/{account}?truncateResponse=false`, `hibp-api-key` and
  `user-agent` headers): 404 means clean, 429 is retried after its Retry-After, 401/403
  is a configuration error that fails the run. It checks email addresses and usernames,
  one request per item, up to HIBP_CONCURRENCY of them in flight at once and no faster
  than HIBP_RATE_LIMIT (your API key's documented requests per minute); phone numbers
  and domains are matched by the corpus only.

DARKWATCH_PROVIDERS chooses which run, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol
from urllib.parse import quote

import httpx
from django.conf import settings

from jobs.errors import PermanentJobError, ProviderUnavailable
from kordant.outbound import Pace, ProviderClient, get, overlapped, provider_error
from scanners.darkwatch import identifiers
from scanners.darkwatch.models import BreachRecord
from scanners.scanning import providers_named


@dataclass(frozen=True)
class ItemQuery:
    """One watched item as providers see it; the plaintext is decrypted only if a provider asks."""

    item_id: int
    kind: str
    value_hash: bytes
    value_encrypted: str

    @property
    def value(self) -> str:
        return identifiers.decrypt(self.value_encrypted)


@dataclass(frozen=True)
class BreachInfo:
    """A breach as an outside source describes it; the engine stores it as a `Breach` row."""

    source: str
    name: str
    title: str = ""
    domain: str = ""
    breach_date: date | None = None
    data_classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Found:
    """`item_id` appears in a breach: a stored one (`breach_id`) or one described by the source (`breach`)."""

    item_id: int
    breach_id: int | None = None
    breach: BreachInfo | None = None


class BreachProvider(Protocol):
    name: str

    def lookup(self, items: Sequence[ItemQuery]) -> list[Found]:
        """Every (item, breach) this source knows of for `items`; raise a jobs.errors error on failure."""
        ...

    def close(self) -> None: ...


class CorpusProvider:
    name = "corpus"

    def lookup(self, items: Sequence[ItemQuery]) -> list[Found]:
        by_hash: dict[bytes, list[int]] = {}
        for item in items:
            by_hash.setdefault(item.value_hash, []).append(item.item_id)
        matches = BreachRecord.objects.filter(identifier_hash__in=list(by_hash)).values_list(
            "identifier_hash", "breach_id"
        )
        # PostgreSQL hands bytea back as memoryview.
        return [Found(item_id, breach_id) for digest, breach_id in matches for item_id in by_hash[bytes(digest)]]

    def close(self) -> None:
        pass


class HIBPProvider(ProviderClient):
    name = "hibp"
    KINDS = frozenset({"email", "username"})

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        user_agent: str,
        timeout: float = 10.0,
        concurrency: int = 1,
        rate_limit: str = "",
        http=None,
    ):
        if not api_key:
            raise PermanentJobError("DARKWATCH_PROVIDERS includes hibp but HIBP_API_KEY is not set")
        self.concurrency = max(1, concurrency)
        self.pace = Pace.of(rate_limit)
        super().__init__(
            http
            or httpx.Client(
                base_url=base_url,
                headers={"hibp-api-key": api_key, "user-agent": user_agent, "accept": "application/json"},
                timeout=timeout,
                limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            )
        )

    def lookup(self, items: Sequence[ItemQuery]) -> list[Found]:
        asked = [item for item in items if item.kind in self.KINDS]
        # One request per item, independent of each other: up to HIBP_CONCURRENCY in flight.
        answers = overlapped(self._breaches_of, asked, max_in_flight=self.concurrency, pace=self.pace)
        return [
            Found(item.item_id, breach=breach)
            for item, breaches in zip(asked, answers, strict=True)
            for breach in breaches
        ]

    def _breaches_of(self, item: ItemQuery) -> list[BreachInfo]:
        reply = get(
            self._http,
            f"/api/v3/breachedaccount/{quote(item.value, safe='')}",
            params={"truncateResponse": "false"},
            provider="Have I Been Pwned",
            accept=(404,),
        )
        if reply.status_code == 404:  # the documented "not pwned"
            return []
        return _breaches(reply)


def _breaches(reply) -> list[BreachInfo]:
    body = reply.json()
    if not isinstance(body, list) or not all(isinstance(entry, dict) and entry.get("Name") for entry in body):
        raise provider_error(
            ProviderUnavailable,
            f"Have I Been Pwned answered {reply.status_code} with JSON that is not a list of breaches: "
            f"{reply.excerpt[:200]!r}",
        )
    return [
        BreachInfo(
            source="hibp",
            name=str(entry["Name"])[:200],
            title=str(entry.get("Title") or "")[:200],
            domain=str(entry.get("Domain") or "")[:200],
            breach_date=_date(entry.get("BreachDate")),
            data_classes=tuple(str(name) for name in entry.get("DataClasses") or ()),
        )
        for entry in body
    ]


def _date(value) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def providers_from_settings() -> list[BreachProvider]:
    """The providers DARKWATCH_PROVIDERS names, configured from settings; the caller closes them."""
    return providers_named(
        "DARKWATCH_PROVIDERS",
        {
            "corpus": CorpusProvider,
            "hibp": lambda: HIBPProvider(
                base_url=settings.HIBP_BASE_URL,
                api_key=settings.HIBP_API_KEY,
                user_agent=settings.HIBP_USER_AGENT,
                timeout=settings.HIBP_TIMEOUT_SECONDS,
                concurrency=settings.HIBP_CONCURRENCY,
                rate_limit=settings.HIBP_RATE_LIMIT,
            ),
        },
    )
