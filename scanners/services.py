"""Writes both products share."""

from django.db.models import QuerySet
from django.utils import timezone

from scanners.findings import FindingStatus


def findings_set_status(findings: QuerySet, status: str) -> int:
    """Move DarkWatch alerts or HomeTitle title changes to `status`; returns how many changed."""
    if status not in FindingStatus.values:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(FindingStatus.values)}")
    return findings.exclude(status=status).update(status=status, updated_at=timezone.now())
