"""Writes both products share."""

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
    # A queryset update sends no post_save: the webhook events are asked for explicitly.
    resource = "alert" if changing.model is Alert else "title_change"
    resource_changed(resource, "updated", lambda: changing.values_list("pk", flat=True))
    return changing.update(status=status, updated_at=timezone.now())
