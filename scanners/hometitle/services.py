"""HomeTitle writes: watched properties, the recorder dataset, and telling owners about title changes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.bulk import bulk_insert_ignore
from kordant.models import Subscription
from notifications.events import resource_changed
from scanners import imports
from scanners.findings import Severity, most_severe
from scanners.hometitle.documents import document_type
from scanners.hometitle.models import Property, RecordedDocument, TitleChange, parcel_key
from scanners.hometitle.providers import DOCUMENT_COLUMNS

IMPORT_COLUMNS = ("county", "document_number", "parcel_number", "document_type", "recorded_date")
# A recordings file's full header: the required columns, then the optional ones.
RECORDING_COLUMNS = (*IMPORT_COLUMNS, "grantor", "grantee", "amount")
NOTIFY_SEVERITIES = (Severity.CRITICAL, Severity.HIGH)
PARCEL_KEY_CHARS = RecordedDocument._meta.get_field("parcel_key").max_length


class PropertyAlreadyWatched(ValueError):
    """The subscription already watches this parcel."""


def property_add(
    subscription: Subscription, *, address: str, county: str, parcel_number: str, owner_names: str
) -> Property:
    """Watch a parcel; PropertyAlreadyWatched if the subscription already does."""
    prop = Property(
        subscription=subscription,
        address=address.strip(),
        county=county.strip(),
        parcel_number=parcel_number.strip(),
        owner_names=owner_names.strip(),
    )
    prop.full_clean(exclude=["parcel_key"])
    try:
        with transaction.atomic():
            prop.save()
    except IntegrityError:
        raise PropertyAlreadyWatched(f"parcel {parcel_number} in {county} is already watched") from None
    return prop


def recordings_import(
    stream: TextIO,
    fmt: str,
    *,
    source: str = "import",
    batch_size: int = 10_000,
    progress: Callable[[imports.ImportReport], None] | None = None,
) -> imports.ImportReport:
    """Load recorded documents from CSV or JSON Lines (see README "HomeTitle"); documents already stored add nothing.

    Columns: county, document_number, parcel_number, document_type, recorded_date (YYYY-MM-DD)
    required; grantor, grantee, amount optional.
    """

    def parse(record: dict[str, Any]) -> tuple:
        county = imports.field_text(record, "county", limit=100)
        parcel = imports.field_text(record, "parcel_number", limit=64)
        raw_date = imports.field_text(record, "recorded_date")
        try:
            recorded = date.fromisoformat(raw_date[:10])
        except ValueError:
            raise imports.LineRejected(f"recorded_date {imports.shown(raw_date)} is not a YYYY-MM-DD date") from None
        raw_amount = imports.field_text(record, "amount", required=False, number=True)
        try:
            amount = Decimal(raw_amount.replace(",", "").lstrip("$")) if raw_amount else None
        except InvalidOperation:
            raise imports.LineRejected(f"amount {imports.shown(raw_amount)} is not a number") from None
        if amount is not None and not (amount.is_finite() and abs(amount) < Decimal("1e12")):
            raise imports.LineRejected(f"amount {imports.shown(raw_amount)} is out of range")
        key = parcel_key(county, parcel)
        if len(key) > PARCEL_KEY_CHARS:  # lower-casing can lengthen a name ("İ" is two characters in lower case)
            raise imports.LineRejected(f"county and parcel_number make a key longer than {PARCEL_KEY_CHARS} characters")
        return (
            county,
            imports.field_text(record, "document_number", limit=64),
            parcel,
            key,
            document_type(imports.field_text(record, "document_type", limit=100)),
            recorded,
            imports.field_text(record, "grantor", required=False),
            imports.field_text(record, "grantee", required=False),
            amount,
            source,
        )

    return imports.import_records(
        imports.records(stream, fmt, IMPORT_COLUMNS),
        parse=parse,
        write=lambda batch: bulk_insert_ignore(RecordedDocument, DOCUMENT_COLUMNS, batch),
        batch_size=batch_size,
        progress=progress,
    )


def title_changes_notify_pending(subscription_id: int) -> int:
    """Tell the owner, in one notification, of every critical or high change not yet told; returns how many."""
    from notifications.services import notify

    with transaction.atomic():
        subscription = Subscription.objects.select_related("user").get(pk=subscription_id)
        pending = list(
            TitleChange.objects.select_for_update(of=("self",))
            .filter(property__subscription_id=subscription_id, notified_at__isnull=True, severity__in=NOTIFY_SEVERITIES)
            .select_related("document", "property")
            .order_by("pk")
        )
        if not pending:
            return 0
        notify(
            subscription.user,
            "hometitle.change",
            {
                "subscription_id": subscription_id,
                "changes": len(pending),
                "highest_severity": most_severe(change.severity for change in pending),
                "documents": [
                    {
                        "property": change.property.address,
                        "document_type": change.document.get_document_type_display(),
                        "document_number": change.document.document_number,
                        "recorded_date": change.document.recorded_date.isoformat(),
                    }
                    for change in pending[:10]
                ],
            },
            dedupe_key=f"hometitle.change:{subscription_id}:{pending[-1].pk}",
        )
        TitleChange.objects.filter(pk__in=[change.pk for change in pending]).update(notified_at=timezone.now())
        resource_changed("title_change", "updated", [change.pk for change in pending])
    return len(pending)
