"""Writes both products share."""

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from notifications.events import resource_changed
from scanners.darkwatch.models import Alert
from scanners.findings import FindingStatus


def findings_set_status(findings: QuerySet, status: str) -> int:
    """Move DarkWatch alerts or HomeTitle title changes to `status`; returns how many changed."""
    if status not in FindingStatus.values:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(FindingStatus.values)}")
    changing = findings.exclude(status=status)
    resource = "alert" if changing.model is Alert else "title_change"
    # A queryset update sends no post_save: the webhook events are asked for explicitly, with
    # the ids read before the update moves them out of `changing`. In one transaction, so the
    # events are made after the update commits, not before it (outside a caller's transaction).
    with transaction.atomic():
        resource_changed(resource, "updated", lambda: changing.values_list("pk", flat=True))
        return changing.update(status=status, updated_at=timezone.now())
