"""Signed download links for report e-mails: the PDF of one report, to whoever holds the link, for a while.

Customers have no login page, so the e-mail's link must work without a session. It carries
the report's id and its owner's, signed with SECRET_KEY under a salt used for nothing else
(a value signed for another purpose does not verify here) and time-stamped: it opens that
one report, and nothing else, until it expires. Every way a link can be wrong (tampered,
expired, another salt, a report that is gone, not ready or has changed owner, an owner
whose account was deactivated) gives the same answer, so a link says nothing about whether
a report exists.

Why 14 days: the link is a bearer credential for a document listing a person's exposures
and properties, and e-mail gets forwarded, shared and breached long after it is read; a
link that outlives its use is a standing leak. Fourteen days covers a weekly report until
two more have come, a monthly one for half its month, and a reader back from a week away.
After that the owner downloads it through the API (`/api/v1/reports/{id}/download/`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from reports.models import Report

SALT = "kordant.reports.download-link"
MAX_AGE = timedelta(days=14)


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def report_link_url(report: Report) -> str:
    """The absolute signed download link for the e-mail telling the owner `report` is ready."""
    token = _signer().sign_object({"report": report.pk, "owner": report.subscription.user_id})
    return settings.SITE_URL.rstrip("/") + reverse("reports:link", args=[token])


def report_link_expires(now: datetime | None = None) -> datetime:
    """When a link signed now stops working."""
    return (now or timezone.now()) + MAX_AGE


def report_from_link(token: str) -> Report | None:
    """The ready report a valid, unexpired link names, or None, whatever is wrong with it."""
    try:
        data = _signer().unsign_object(token, max_age=MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    if not isinstance(data, dict) or set(data) != {"report", "owner"}:
        return None
    report_id, owner_id = data["report"], data["owner"]
    if not (type(report_id) is int and type(owner_id) is int):
        return None
    return (
        Report.objects.select_related("subscription")
        .filter(
            pk=report_id,
            subscription__user_id=owner_id,
            subscription__user__is_active=True,
            status=Report.Status.READY,
        )
        .exclude(file="")
        .first()
    )
