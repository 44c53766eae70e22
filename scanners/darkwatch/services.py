"""DarkWatch writes: watched items, the breach corpus, and telling subscribers about new exposures."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any, TextIO

from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.bulk import bulk_insert_ignore
from kordant.models import Subscription
from notifications.events import resource_changed
from scanners import imports
from scanners.darkwatch import identifiers
from scanners.darkwatch.identifiers import IdentifierInvalid
from scanners.darkwatch.models import Alert, Breach, BreachRecord, ItemKind, Watchlist, WatchlistItem
from scanners.findings import Severity, most_severe

# Lower-cased HIBP data class names. Anything that lets someone into an account or money → critical;
# what enables phishing, SIM swaps or impersonation → high; the rest (names, emails...) → medium.
CRITICAL_DATA_CLASSES = frozenset(
    {
        "passwords",
        "password hints",
        "auth tokens",
        "credit cards",
        "credit card cvv",
        "partial credit card data",
        "bank account numbers",
        "social security numbers",
        "government issued ids",
        "passport numbers",
        "security questions and answers",
    }
)
HIGH_DATA_CLASSES = frozenset(
    {"phone numbers", "physical addresses", "dates of birth", "driver's licenses", "financial data", "ip addresses"}
)
IMPORT_COLUMNS = ("breach", "kind", "identifier")
# Longer than any identifier of any kind (an e-mail address is at most 254): refused before normalizing.
IDENTIFIER_CHARS = 320


class ItemAlreadyWatched(ValueError):
    """The watchlist already has this identifier."""


def breach_severity(data_classes: Iterable[str]) -> str:
    """How bad being in a breach is, from what the breach exposed."""
    exposed = {name.strip().lower() for name in data_classes}
    if exposed & CRITICAL_DATA_CLASSES:
        return Severity.CRITICAL
    if exposed & HIGH_DATA_CLASSES:
        return Severity.HIGH
    return Severity.MEDIUM


def watchlist_item_add(
    subscription: Subscription, kind: str, value: str, *, label: str = "", watchlist: str = "Personal"
) -> WatchlistItem:
    """Watch `value`; IdentifierInvalid if it is not a valid identifier of `kind`, ItemAlreadyWatched if watched."""
    item = WatchlistItem(kind=kind, label=label)
    item.set_value(value)  # before anything is written: bad input changes nothing
    with transaction.atomic():
        list_, _ = Watchlist.objects.get_or_create(subscription=subscription, name=watchlist)
        item.watchlist = list_
        try:
            with transaction.atomic():
                item.save()
        except IntegrityError:
            raise ItemAlreadyWatched(f"{item.masked} is already on the {watchlist} watchlist") from None
    return item


def watchlist_item_update(
    item: WatchlistItem, *, value: str | None = None, label: str | None = None, active: bool | None = None
) -> WatchlistItem:
    """Change an item's value, label or active flag."""
    if value is not None:
        item.set_value(value)
    if label is not None:
        item.label = label
    if active is not None:
        item.active = active
    try:
        with transaction.atomic():
            item.save()
    except IntegrityError:
        raise ItemAlreadyWatched(f"{item.masked} is already on this watchlist") from None
    return item


def breaches_import(
    stream: TextIO,
    fmt: str,
    *,
    source: str = "corpus",
    batch_size: int = 10_000,
    progress: Callable[[imports.ImportReport], None] | None = None,
) -> imports.ImportReport:
    """Load breach records from CSV or JSON Lines (see README "DarkWatch"); lines already stored add nothing.

    Columns: breach, kind, identifier (required); breach_date (YYYY-MM-DD), data_classes
    (a JSON list, or names separated by "|" or ";"), title, domain. A breach's details are
    taken from its first line.
    """
    hashers = {kind: identifiers.hasher(kind) for kind in ItemKind.values}
    normalizers = {kind: identifiers.normalizer(kind) for kind in ItemKind.values}
    seen: set[str] = set()  # breach names whose details went out with a line
    breaches: dict[str, dict[str, Any]] = {}  # the writer's copy: name -> details
    breach_ids: dict[str, int] = {}

    def parse(record: dict[str, Any]) -> tuple[str, str, bytes, dict[str, Any] | None]:
        name = imports.field_text(record, "breach", limit=200)
        kind = imports.field_text(record, "kind").lower()
        if kind not in hashers:
            raise imports.LineRejected(f"kind {imports.shown(kind)} is not one of {', '.join(hashers)}")
        try:
            # A JSON number is read as its digits (a phone number, a numeric username).
            value = normalizers[kind](imports.field_text(record, "identifier", limit=IDENTIFIER_CHARS))
        except IdentifierInvalid as exc:
            raise imports.LineRejected(str(exc)) from None
        details = None
        if name not in seen:  # a breach's details travel with its first line, to the writer
            details = _breach_details(record)
            seen.add(name)
        return name, kind, hashers[kind](value), details

    def write(batch: list[tuple[str, str, bytes, dict[str, Any] | None]]) -> int:
        breaches.update((name, details) for name, _, _, details in batch if details is not None)
        unseen = {name for name, _, _, _ in batch if name not in breach_ids}
        if unseen:
            Breach.objects.bulk_create(
                [Breach(source=source, name=name, **breaches[name]) for name in unseen], ignore_conflicts=True
            )
            breach_ids.update(Breach.objects.filter(source=source, name__in=unseen).values_list("name", "id"))
        rows = [(breach_ids[name], kind, digest) for name, kind, digest, _ in batch]
        return bulk_insert_ignore(BreachRecord, ["breach_id", "kind", "identifier_hash"], rows)

    return imports.import_records(
        imports.records(stream, fmt, IMPORT_COLUMNS), parse=parse, write=write, batch_size=batch_size, progress=progress
    )


def _breach_details(record: dict[str, Any]) -> dict[str, Any]:
    raw_date = imports.field_text(record, "breach_date", required=False)
    try:
        breach_date = date.fromisoformat(raw_date) if raw_date else None
    except ValueError:
        raise imports.LineRejected(f"breach_date {imports.shown(raw_date)} is not a YYYY-MM-DD date") from None
    classes = record.get("data_classes") or []
    if isinstance(classes, str):
        classes = classes.replace(";", "|").split("|")
    if not isinstance(classes, list):
        raise imports.LineRejected("data_classes must be a list or names separated by '|'")
    if len(classes) > 100:
        raise imports.LineRejected("data_classes has more than 100 names")
    # Each name is checked like a field: never a list or an object stored as its Python text.
    classes = [
        imports.field_text({"data_classes": name}, "data_classes", required=False, limit=100) for name in classes
    ]
    classes = [name for name in classes if name]
    return {
        "title": imports.field_text(record, "title", required=False, limit=200),
        "domain": imports.field_text(record, "domain", required=False, limit=200),
        "breach_date": breach_date,
        "data_classes": classes,
        "severity": breach_severity(classes),
    }


def alerts_notify_pending(subscription_id: int) -> int:
    """Tell the subscriber, in one notification, about every alert they have not been told of; returns how many."""
    from notifications.services import notify

    with transaction.atomic():
        subscription = Subscription.objects.select_related("user").get(pk=subscription_id)
        pending = list(
            Alert.objects.select_for_update(of=("self",))
            .filter(subscription_id=subscription_id, notified_at__isnull=True)
            .select_related("breach")
            .order_by("pk")
        )
        if not pending:
            return 0
        names = list(dict.fromkeys(str(alert.breach) for alert in pending))
        notify(
            subscription.user,
            "darkwatch.exposure",
            {
                "subscription_id": subscription_id,
                "new_alerts": len(pending),
                "highest_severity": most_severe(alert.severity for alert in pending),
                "breaches": names[:10],
            },
            dedupe_key=f"darkwatch.exposure:{subscription_id}:{pending[-1].pk}",
        )
        Alert.objects.filter(pk__in=[alert.pk for alert in pending]).update(notified_at=timezone.now())
        resource_changed("alert", "updated", [alert.pk for alert in pending])
    return len(pending)
