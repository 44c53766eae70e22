"""The DarkWatch scan: a subscription's active items against every provider, in batches.

Each batch costs the same few queries whatever its size: read the items, one lookup per
database-backed provider, store breaches an outside source described (two), read the
severities of breaches not seen yet (one), read which pairs already have alerts, insert
the new ones, stamp the items as scanned. Outside calls happen between transactions, never
inside one. Alerts are unique per (item, breach), so scanning twice creates nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from notifications.events import resource_changed
from scanners.darkwatch.models import Alert, Breach, WatchlistItem
from scanners.darkwatch.providers import BreachInfo, BreachProvider, Found, ItemQuery
from scanners.darkwatch.services import breach_severity
from scanners.findings import most_severe


@dataclass
class ScanReport:
    items: int = 0
    found: int = 0  # (item, breach) pairs the providers reported, old and new
    new_alerts: int = 0
    severities: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "items": self.items,
            "found": self.found,
            "new_alerts": self.new_alerts,
            "highest_severity": most_severe(self.severities),
        }


def watchlist_scan(
    subscription_id: int,
    providers: Sequence[BreachProvider],
    *,
    batch_size: int = 500,
    progress: Callable[[float, str], None] | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> ScanReport:
    """Scan every active item of the subscription; create an alert for each new (item, breach) pair."""
    items = WatchlistItem.objects.filter(watchlist__subscription_id=subscription_id, active=True)
    total = items.count()
    report = ScanReport()
    severities: dict[int, str] = {}
    after = 0
    while True:
        if checkpoint:
            checkpoint()
        batch = [
            ItemQuery(pk, kind, bytes(digest), token)
            for pk, kind, digest, token in items.filter(pk__gt=after)
            .order_by("pk")
            .values_list("pk", "kind", "value_hash", "value_encrypted")[:batch_size]
        ]
        if not batch:
            break
        after = batch[-1].item_id
        found = [hit for provider in providers for hit in provider.lookup(batch)]
        _store_batch(subscription_id, batch, found, severities, report)
        report.items += len(batch)
        if progress:
            progress(100.0 * report.items / max(total, 1), f"{report.items} of {total} items scanned")
    return report


def _store_batch(
    subscription_id: int, batch: list[ItemQuery], found: list[Found], severities: dict[int, str], report: ScanReport
) -> None:
    now = timezone.now()
    with transaction.atomic():
        described = {hit.breach for hit in found if hit.breach is not None}
        breach_ids = _breach_ids(described) if described else {}
        pairs = {(hit.item_id, hit.breach_id or breach_ids[hit.breach]) for hit in found}
        unknown = {breach_id for _, breach_id in pairs} - severities.keys()
        if unknown:
            severities.update(Breach.objects.filter(pk__in=unknown).values_list("pk", "severity"))
        item_ids = [item.item_id for item in batch]
        if pairs:
            existing = set(Alert.objects.filter(item_id__in=item_ids).values_list("item_id", "breach_id"))
            new = sorted(pairs - existing)
            Alert.objects.bulk_create(
                [
                    Alert(
                        subscription_id=subscription_id,
                        item_id=item_id,
                        breach_id=breach_id,
                        severity=severities[breach_id],
                        first_seen=now,
                    )
                    for item_id, breach_id in new
                ],
                ignore_conflicts=True,  # a scan racing this one (there is none: the type is a singleton)
            )
            # bulk_create sends no post_save: the webhook events are asked for here (after commit).
            resource_changed(
                "alert",
                "created",
                lambda: Alert.objects.filter(item_id__in=item_ids, first_seen=now).values_list("pk", flat=True),
            )
            report.found += len(pairs)
            report.new_alerts += len(new)
            report.severities.extend(severities[breach_id] for _, breach_id in new)
        WatchlistItem.objects.filter(pk__in=item_ids).update(last_scanned_at=now)


def _breach_ids(described: set[BreachInfo]) -> dict[BreachInfo, int]:
    """Store breaches an outside source described (first description wins) and map each to its row."""
    Breach.objects.bulk_create(
        [
            Breach(
                source=info.source,
                name=info.name,
                title=info.title,
                domain=info.domain,
                breach_date=info.breach_date,
                data_classes=list(info.data_classes),
                severity=breach_severity(info.data_classes),
            )
            for info in described
        ],
        ignore_conflicts=True,
    )
    by_key = {(info.source, info.name): info for info in described}
    rows = Breach.objects.filter(source__in={info.source for info in described}, name__in=[k[1] for k in by_key])
    return {
        by_key[(source, name)]: pk
        for pk, source, name in rows.values_list("pk", "source", "name")
        if (source, name) in by_key
    }
