"""The HomeTitle scan: a subscription's properties against every recorder source, in batches.

A property is checked from its last scan less HOMETITLE_LOOKBACK_DAYS (county data arrives
late), or, the first time, from HOMETITLE_INITIAL_LOOKBACK_DAYS before it was added, so the
owner's own purchase years ago is not news. Title changes are unique per (property,
document): a document seen again by a later, overlapping scan creates nothing. Each batch
costs a constant number of queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications.events import resource_changed
from scanners.findings import most_severe
from scanners.hometitle import documents
from scanners.hometitle.models import Property, TitleChange
from scanners.hometitle.providers import DocumentHit, ParcelQuery


@dataclass
class ScanReport:
    properties: int = 0
    documents: int = 0  # documents in the windows scanned, old and new
    new_changes: int = 0
    severities: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "properties": self.properties,
            "documents": self.documents,
            "new_changes": self.new_changes,
            "highest_severity": most_severe(self.severities),
        }


def properties_scan(
    subscription_id: int,
    providers: Sequence,
    *,
    batch_size: int = 500,
    progress: Callable[[float, str], None] | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> ScanReport:
    """Scan every property of the subscription; create a title change for each new document on it."""
    properties = Property.objects.filter(subscription_id=subscription_id)
    total = properties.count()
    report = ScanReport()
    after = 0
    while True:
        if checkpoint:
            checkpoint()
        batch = list(
            properties.filter(pk__gt=after)
            .order_by("pk")
            .values_list("pk", "parcel_key", "county", "parcel_number", "owner_names", "last_scanned_at", "created_at")[
                :batch_size
            ]
        )
        if not batch:
            break
        after = batch[-1][0]
        parcels = {}
        for _, key, county, number, _, last_scanned, created in batch:
            since = (
                last_scanned - timedelta(days=settings.HOMETITLE_LOOKBACK_DAYS)
                if last_scanned
                else created - timedelta(days=settings.HOMETITLE_INITIAL_LOOKBACK_DAYS)
            ).date()
            # Two properties of one subscription on one parcel: look from the earlier date.
            if key not in parcels or since < parcels[key].since:
                parcels[key] = ParcelQuery(key, county, number, since)
        hits = {hit.document_id: hit for provider in providers for hit in provider.lookup(list(parcels.values()))}
        _store_batch(batch, parcels, list(hits.values()), report)
        report.properties += len(batch)
        if progress:
            progress(100.0 * report.properties / max(total, 1), f"{report.properties} of {total} properties scanned")
    return report


def _store_batch(batch: list[tuple], parcels: dict[str, ParcelQuery], hits: list[DocumentHit], report) -> None:
    now = timezone.now()
    by_parcel: dict[str, list[DocumentHit]] = {}
    for hit in hits:
        by_parcel.setdefault(hit.parcel_key, []).append(hit)
    candidates = {}
    for pk, key, _, _, owners, _, _ in batch:
        since = parcels[key].since
        for hit in by_parcel.get(key, ()):
            if hit.recorded_date >= since:
                candidates[(pk, hit.document_id)] = documents.severity(hit.document_type, hit.grantee, owners)
    report.documents += len(candidates)
    property_ids = [row[0] for row in batch]
    with transaction.atomic():
        if candidates:
            existing = set(
                TitleChange.objects.filter(property_id__in=property_ids).values_list("property_id", "document_id")
            )
            new = sorted(candidates.keys() - existing)
            TitleChange.objects.bulk_create(
                [
                    TitleChange(property_id=pk, document_id=doc, severity=candidates[(pk, doc)], detected_at=now)
                    for pk, doc in new
                ],
                ignore_conflicts=True,
            )
            # bulk_create sends no post_save: the webhook events are asked for here (after commit).
            resource_changed(
                "title_change",
                "created",
                lambda: TitleChange.objects.filter(property_id__in=property_ids, detected_at=now).values_list(
                    "pk", flat=True
                ),
            )
            report.new_changes += len(new)
            report.severities.extend(candidates[pair] for pair in new)
        Property.objects.filter(pk__in=property_ids).update(last_scanned_at=now)
