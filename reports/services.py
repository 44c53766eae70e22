"""Writes for reports: request one, generate it (compile, render, store, notify), regenerate it."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import date

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from jobs import enqueue
from jobs.models import JobRun
from kordant.models import Subscription
from notifications.events import resource_changed
from notifications.kinds import REPORTS_READY
from notifications.services import notify
from reports.errors import ReportPeriodInvalid, ReportQueueFull
from reports.links import report_link_expires, report_link_url
from reports.models import Report, ReportKind
from reports.periods import period_problems
from reports.rendering import pdf_from_html, report_context, report_html
from reports.selectors import report_data

logger = logging.getLogger(__name__)
JOB_TYPE = "reports.generate"


def _checked_period(kind: str, period_start: date, period_end: date) -> None:
    if kind not in ReportKind.values:
        raise ReportPeriodInvalid(f"unknown report kind {kind!r}; known: {', '.join(ReportKind.values)}")
    if not (isinstance(period_start, date) and isinstance(period_end, date)):
        raise ReportPeriodInvalid("period start and end must be dates")
    problems = period_problems(period_start, period_end)
    if problems:
        raise ReportPeriodInvalid(next(iter(problems.values())), {field: [text] for field, text in problems.items()})


def report_request(subscription: Subscription, kind: str, period_start: date, period_end: date, user=None) -> JobRun:
    """Queue the report for a period; asking again while one is queued or running returns that run.

    A customer asking (not staff, not a schedule) may have REPORTS_MAX_QUEUED_PER_CUSTOMER reports
    waiting across their subscriptions; one more raises ReportQueueFull.
    """
    _checked_period(kind, period_start, period_end)
    payload = {
        "subscription_id": subscription.pk,
        "kind": kind,
        "period_start": period_start.isoformat(),
        "period_end": period_end.isoformat(),
    }
    dedupe_key = f"reports:{subscription.pk}:{kind}:{period_start}:{period_end}"
    with transaction.atomic():
        if user is not None and not user.is_staff:
            _check_customer_queue(subscription.user_id, dedupe_key)
        return enqueue(
            JOB_TYPE,
            payload,
            user=user,
            subscription=subscription,
            trigger=JobRun.Trigger.MANUAL if user is not None else JobRun.Trigger.API,
            dedupe_key=dedupe_key,
        )


def _check_customer_queue(owner_id: int, dedupe_key: str) -> None:
    # The owner's row is the lock: two requests at once count one after the other (PostgreSQL),
    # so a burst cannot slip past the limit. The same period again is no new work (dedupe).
    get_user_model().objects.select_for_update().filter(pk=owner_id).first()
    limit = settings.REPORTS_MAX_QUEUED_PER_CUSTOMER
    waiting = (
        JobRun.objects.filter(job_type=JOB_TYPE, status__in=JobRun.ACTIVE_STATUSES, subscription__user_id=owner_id)
        .exclude(dedupe_key=dedupe_key)
        .count()
    )
    if waiting >= limit:
        raise ReportQueueFull(
            f"You have {waiting} reports waiting; at most {limit} reports may wait at once. "
            "Ask again when one of them is ready."
        )


def report_regenerate(report: Report, user=None) -> JobRun:
    """Queue a fresh rendering of an existing report; its row and download link stay the same."""
    return report_request(report.subscription, report.kind, report.period_start, report.period_end, user=user)


def report_storage_name(report: Report, checksum: str) -> str:
    # The checksum makes every rendering a new name, so the old file stays whole until the row moves on.
    return (
        f"reports/{report.subscription_id}/{report.kind}/"
        f"{report.period_start:%Y-%m-%d}_{report.period_end:%Y-%m-%d}-{checksum[:16]}.pdf"
    )


def _subscriber_name(subscription: Subscription) -> str:
    user = subscription.user
    return user.get_full_name() or user.username


def report_generate(
    subscription_id: int,
    kind: str,
    period_start: date,
    period_end: date,
    progress: Callable[[float, str], None] = lambda pct, msg: None,
) -> Report:
    """Compile, render and store a period's report, then tell the subscriber; safe to run again."""
    _checked_period(kind, period_start, period_end)
    subscription = Subscription.objects.select_related("user").get(pk=subscription_id)
    report, _ = Report.objects.get_or_create(
        subscription=subscription, kind=kind, period_start=period_start, period_end=period_end
    )
    try:
        progress(10, "compiling the period's findings")
        data = report_data(subscription, period_start, period_end)
        progress(35, "rendering HTML")
        html = report_html(
            report_context(
                subscriber=_subscriber_name(subscription), report=report, data=data, timezone=subscription.timezone
            )
        )
        progress(50, "laying out the PDF")
        pdf = pdf_from_html(html)
    except Exception as exc:
        _record_failure(report, exc)
        raise
    checksum = hashlib.sha256(pdf.content).hexdigest()
    # The PDF's bytes vary between renderings (fontTools orders subset glyphs differently), the
    # HTML's do not: the same findings make the same notice, so a retry never sends a second one.
    content_key = hashlib.sha256(html.encode()).hexdigest()[:32]
    progress(85, "storing the PDF")
    new_name = _store(report_storage_name(report, checksum), pdf.content)
    try:
        with transaction.atomic():
            report = Report.objects.select_for_update().get(pk=report.pk)
            old_name = report.file.name
            report.file.name = new_name
            report.status = Report.Status.READY
            report.page_count = pdf.page_count
            report.size_bytes = len(pdf.content)
            report.checksum = checksum
            report.generated_at = timezone.now()
            report.error = ""
            report.save()
            # Same transaction as the row: a retried run never tells the subscriber twice.
            notify(
                subscription.user,
                REPORTS_READY,
                {
                    "subscription_id": subscription.pk,
                    "report_id": report.pk,
                    "period_start": period_start.isoformat(),
                    "period_end": period_end.isoformat(),
                    # Signed: customers have no session; the link opens this report only, for a while.
                    "download_url": report_link_url(report),
                    "download_expires_on": f"{report_link_expires():%Y-%m-%d}",
                },
                dedupe_key=f"reports.ready:{report.pk}:{content_key}",
            )
            if old_name and old_name != new_name:
                transaction.on_commit(lambda: _delete_quietly(old_name))
    except Exception:
        _delete_quietly(new_name)
        raise
    progress(100, f"report ready: {pdf.page_count} pages")
    return report


def _store(name: str, content: bytes) -> str:
    # FileSystemStorage leaves a partial file behind when a write fails (disk full); remove it.
    name = default_storage.get_available_name(name)
    try:
        return default_storage.save(name, ContentFile(content))
    except Exception:
        _delete_quietly(name)
        raise


def _record_failure(report: Report, exc: Exception) -> None:
    # A report that was ready keeps its last good file; only the error says the rendering failed.
    values = {"error": f"{type(exc).__name__}: {exc}", "updated_at": timezone.now()}
    if not report.file:
        values["status"] = Report.Status.FAILED
    Report.objects.filter(pk=report.pk).update(**values)
    resource_changed("report", "updated", [report.pk])


def _delete_quietly(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:
        logger.warning("could not delete report file %s; it is orphaned", name, exc_info=True)
