"""Where HomeTitle finds documents recorded against watched parcels.

- `RecorderProvider`: the local recorder dataset (`manage.py import_recordings`), one query per batch.
- `SodaProvider`: a county open-data API in the Socrata SODA style:
  `GET /resource/{dataset}.json` with a SoQL `$where`, `$order`, `$limit`/`$offset` paging and
  the `X-App-Token` header. Rows carry county, document_number, parcel_number, document_type,
  recorded_date, grantor, grantee and amount. What it returns is stored as `RecordedDocument`s
  (skipping those already stored), then matched like the local data.

HOMETITLE_PROVIDERS chooses which run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import httpx
from django.conf import settings

from jobs.bulk import bulk_insert_ignore
from jobs.errors import PermanentJobError, ProviderUnavailable
from kordant.outbound import Pace, ProviderClient, get, overlapped, provider_error
from scanners.hometitle.documents import document_type
from scanners.hometitle.models import RecordedDocument, parcel_key
from scanners.scanning import providers_named

DOCUMENT_COLUMNS = [
    "county",
    "document_number",
    "parcel_number",
    "parcel_key",
    "document_type",
    "recorded_date",
    "grantor",
    "grantee",
    "amount",
    "source",
]


@dataclass(frozen=True)
class ParcelQuery:
    """A watched parcel and the first recording date worth looking at."""

    parcel_key: str
    county: str
    parcel_number: str
    since: date


@dataclass(frozen=True)
class DocumentHit:
    """A stored document on a watched parcel: what the engine needs to judge it."""

    document_id: int
    parcel_key: str
    recorded_date: date
    document_type: str
    grantee: str


class RecorderProvider:
    name = "recorder"

    def lookup(self, parcels: Sequence[ParcelQuery]) -> list[DocumentHit]:
        if not parcels:
            return []
        rows = RecordedDocument.objects.filter(
            parcel_key__in={parcel.parcel_key for parcel in parcels},
            recorded_date__gte=min(parcel.since for parcel in parcels),
        ).values_list("pk", "parcel_key", "recorded_date", "document_type", "grantee")
        return [DocumentHit(*row) for row in rows]

    def close(self) -> None:
        pass


class SodaProvider(ProviderClient):
    """Fetches a batch's documents from the county API, stores them, and answers from what was stored."""

    name = "soda"
    PAGE = 1000

    def __init__(
        self,
        *,
        base_url: str,
        dataset: str,
        app_token: str = "",
        timeout: float = 20.0,
        concurrency: int = 1,
        rate_limit: str = "",
        http=None,
    ):
        if not (base_url and dataset):
            raise PermanentJobError(
                "HOMETITLE_PROVIDERS includes soda but HOMETITLE_SODA_BASE_URL or HOMETITLE_SODA_DATASET is not set"
            )
        self.concurrency = max(1, concurrency)
        self.pace = Pace.of(rate_limit)
        headers = {"Accept": "application/json"} | ({"X-App-Token": app_token} if app_token else {})
        pool = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        super().__init__(http or httpx.Client(base_url=base_url, headers=headers, timeout=timeout, limits=pool))
        self.dataset = dataset

    def lookup(self, parcels: Sequence[ParcelQuery]) -> list[DocumentHit]:
        if not parcels:
            return []
        by_county: dict[str, list[ParcelQuery]] = {}
        for parcel in parcels:
            by_county.setdefault(parcel.county, []).append(parcel)
        # One query per county, independent of each other: up to HOMETITLE_SODA_CONCURRENCY in flight.
        # A county's pages follow one another (each needs the last one's count).
        fetched = overlapped(
            lambda county_group: self._fetch(*county_group),
            list(by_county.items()),
            max_in_flight=self.concurrency,
            pace=self.pace,
        )
        rows = [row for county_rows in fetched for row in county_rows]
        bulk_insert_ignore(RecordedDocument, DOCUMENT_COLUMNS, rows)
        # Match from the table, which now holds them: one path for every source.
        return RecorderProvider().lookup(parcels)

    def _fetch(self, county: str, parcels: list[ParcelQuery]) -> list[tuple]:
        numbers = ", ".join(_soql_text(parcel.parcel_number) for parcel in parcels)
        since = min(parcel.since for parcel in parcels)
        where = (
            f"county = {_soql_text(county)} AND parcel_number in({numbers}) "
            f"AND recorded_date >= '{since.isoformat()}T00:00:00'"
        )
        rows: list[tuple] = []
        offset = 0
        while True:
            reply = get(
                self._http,
                f"/resource/{self.dataset}.json",
                params={"$where": where, "$order": "document_number", "$limit": self.PAGE, "$offset": offset},
                provider="County records API",
            )
            page = reply.json()
            if not isinstance(page, list):
                raise self._malformed(reply, "a JSON array of rows")
            for row in page:
                rows.append(self._document(reply, row, county))
            if len(page) < self.PAGE:
                return rows
            offset += self.PAGE

    def _document(self, reply, row, county: str) -> tuple:
        try:
            parcel = str(row["parcel_number"]).strip()
            recorded = datetime.fromisoformat(str(row["recorded_date"]).replace("Z", "+00:00")).date()
            amount = Decimal(str(row["amount"])) if row.get("amount") not in (None, "") else None
            return (
                county,
                str(row["document_number"]).strip()[:64],
                parcel[:64],
                parcel_key(county, parcel),
                document_type(str(row.get("document_type") or "")),
                recorded,
                str(row.get("grantor") or "")[:300],
                str(row.get("grantee") or "")[:300],
                amount,
                f"soda:{self.dataset}",
            )
        except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError) as exc:
            raise self._malformed(reply, f"rows with document_number, parcel_number, recorded_date ({exc!r})") from None

    @staticmethod
    def _malformed(reply, expected: str) -> Exception:
        return provider_error(
            ProviderUnavailable,
            f"County records API answered {reply.status_code} with JSON that is not {expected}: "
            f"{reply.excerpt[:200]!r}",
        )


def _soql_text(value: str) -> str:
    """A SoQL string literal: single quotes, doubled inside."""
    return "'" + value.replace("'", "''") + "'"


def providers_from_settings() -> list:
    """The providers HOMETITLE_PROVIDERS names, configured from settings; the caller closes them."""
    return providers_named(
        "HOMETITLE_PROVIDERS",
        {
            "recorder": RecorderProvider,
            "soda": lambda: SodaProvider(
                base_url=settings.HOMETITLE_SODA_BASE_URL,
                dataset=settings.HOMETITLE_SODA_DATASET,
                app_token=settings.HOMETITLE_SODA_APP_TOKEN,
                timeout=settings.HOMETITLE_SODA_TIMEOUT_SECONDS,
                concurrency=settings.HOMETITLE_SODA_CONCURRENCY,
                rate_limit=settings.HOMETITLE_SODA_RATE_LIMIT,
            ),
        },
    )
