"""Writes for notifications: `notify`, cancelling reminders, re-enabling webhook endpoints.

Delivery itself (claiming, sending, recording) is in notifications/delivery.py.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from jobs import enqueue
from jobs.errors import InvalidTransition
from jobs.models import JobRun
from jobs.services import job_run_cancel
from notifications.errors import NotCancellable, NotificationInvalid, NotReplayable, UnknownChannel
from notifications.events import event_sequence_after, event_sequences_restart
from notifications.kinds import kind_get
from notifications.models import Channel, Notification, WebhookEndpoint
from notifications.selectors import Target, quiet_hours_end, user_targets, user_timezone

logger = logging.getLogger("notifications")

SEND_JOB = "notifications.send"
# Many notifications due now, delivered several at a time (notifications/batch.py).
BATCH_JOB = "notifications.send_batch"
# Quiet hours hold back what buzzes a phone; email and webhooks are not intrusive.
QUIET_HOURS_CHANNELS = frozenset({Channel.SMS, Channel.PUSH})


def notify(
    user,
    kind: str,
    context: dict,
    *,
    channels: Iterable[str] | None = None,
    send_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> list[Notification]:
    """Create one notification per enabled channel and queue its send; jobs reach Redis when the caller commits."""
    spec, wanted, stored_context = _checked_request(kind, context, channels, send_at, dedupe_key)
    _check_user(user)
    with transaction.atomic():
        return _notify_user(user, spec, wanted, stored_context, send_at, dedupe_key, batch=None)


def notify_many(
    users: Iterable,
    kind: str,
    context: dict,
    *,
    channels: Iterable[str] | None = None,
    send_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> list[Notification]:
    """`notify` each of `users` (a fan-out); what is due now is queued as `notifications.send_batch` jobs."""
    spec, wanted, stored_context = _checked_request(kind, context, channels, send_at, dedupe_key)
    if isinstance(users, QuerySet):
        users = users.iterator(chunk_size=2000)  # 100,000 users need not all be in memory at once
    size = settings.NOTIFICATIONS_BATCH_SIZE
    created: list[Notification] = []
    due_now: list[Notification] = []
    # One transaction: a bad user anywhere rolls back everything, and no job reaches Redis before the commit.
    with transaction.atomic():
        for user in users:
            _check_user(user)
            created += _notify_user(user, spec, wanted, stored_context, send_at, dedupe_key, batch=due_now)
            while len(due_now) >= size:
                _batch_enqueue(due_now[:size])
                del due_now[:size]
        if due_now:
            _batch_enqueue(due_now)
    return created


def _batch_enqueue(notifications: list[Notification]) -> None:
    ids = [n.pk for n in notifications]
    run = enqueue(BATCH_JOB, {"notification_ids": ids})
    Notification.objects.filter(pk__in=ids).update(job_run=run)
    for notification in notifications:
        notification.job_run = run


def _checked_request(kind, context, channels, send_at, dedupe_key):
    spec = kind_get(kind)
    wanted = spec.channels if channels is None else _checked_channels(channels) & spec.channels
    stored_context = spec.validate(context)
    if send_at is not None and timezone.is_naive(send_at):
        raise NotificationInvalid("send_at must be timezone-aware")
    if dedupe_key is not None and not (isinstance(dedupe_key, str) and 0 < len(dedupe_key) <= 200):
        raise NotificationInvalid("dedupe_key must be a string of 1 to 200 characters")
    return spec, wanted, stored_context


def _check_user(user) -> None:
    if user is None or getattr(user, "pk", None) is None:
        raise NotificationInvalid("notify() needs a saved user")


def _notify_user(user, spec, wanted, stored_context, send_at, dedupe_key, *, batch) -> list[Notification]:
    """Create `user`'s notifications; each due now joins `batch` if given, else gets its own send job."""
    targets = user_targets(user, spec.name, frozenset(wanted))
    existing = _existing_for_dedupe_key(user, dedupe_key) if dedupe_key else {}
    tz = None
    notifications = []
    for target in targets:
        key = (target.channel, target.endpoint.pk if target.endpoint else None)
        if key in existing:
            notifications.append(existing[key])
            continue
        due = send_at
        if target.channel in QUIET_HOURS_CHANNELS and target.preference and target.preference.quiet_hours_start:
            tz = tz or user_timezone(user)
            due = _after_quiet_hours(target, tz, send_at or timezone.now()) or send_at
        notification = _create(user, spec.name, stored_context, target, due, dedupe_key, batch)
        if notification is not None:
            notifications.append(notification)
    return notifications


def notify_staff(kind: str, context: dict, *, dedupe_key: str | None = None) -> list[Notification]:
    """`notify` every active staff user who has an email address (e.g. kind jobs.failed)."""
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="").order_by("pk")
    created = []
    with transaction.atomic():
        for user in staff:
            created += notify(user, kind, context, channels=[Channel.EMAIL], dedupe_key=dedupe_key)
    return created


def _checked_channels(channels: Iterable[str]) -> frozenset[str]:
    if isinstance(channels, str):
        channels = [channels]  # notify(..., channels="email") means what it says
    chosen = frozenset(channels)
    unknown = sorted(chosen - set(Channel.values))
    if unknown:
        raise UnknownChannel(f"Unknown channel(s) {', '.join(map(repr, unknown))}; known: {', '.join(Channel.values)}")
    return chosen


def _existing_for_dedupe_key(user, dedupe_key: str) -> dict[tuple[str, int | None], Notification]:
    rows = Notification.objects.filter(recipient=user, dedupe_key=dedupe_key)
    return {(row.channel, row.webhook_endpoint_id): row for row in rows}


def _after_quiet_hours(target: Target, tz, when: datetime) -> datetime | None:
    preference = target.preference
    return quiet_hours_end(preference.quiet_hours_start, preference.quiet_hours_end, tz, when)


def _create(user, kind: str, context: dict, target: Target, send_at, dedupe_key, batch) -> Notification | None:
    notification = Notification(
        recipient=user,
        channel=target.channel,
        kind=kind,
        context=context,
        webhook_endpoint=target.endpoint,
        address=target.address,
        send_at=send_at,
        dedupe_key=dedupe_key,
    )
    # Only a dedupe key can collide, and only then is the savepoint needed to recover from it; a
    # fan-out of 100,000 without one saves two round trips a notification.
    savepoint = transaction.atomic() if dedupe_key is not None else contextlib.nullcontext()
    try:
        with savepoint:
            notification.save(force_insert=True)
    except IntegrityError:
        if dedupe_key is None:
            raise
        # A concurrent notify() with the same key won the race; the database said so.
        return Notification.objects.filter(
            recipient=user, channel=target.channel, webhook_endpoint=target.endpoint, dedupe_key=dedupe_key
        ).first()
    return notification_enqueue(notification, batch=batch)


def notification_enqueue(notification: Notification, *, batch: list | None = None) -> Notification:
    """Queue the send job of a saved notification (at its send_at); it reaches Redis when the caller commits.

    With `batch` (notify_many), one due now joins the batch instead: its batch job carries it."""
    send_at = notification.send_at
    due_later = send_at is not None and send_at > timezone.now()
    if batch is not None and not due_later:
        batch.append(notification)  # its batch job is queued (and recorded on it) by notify_many
        return notification
    run = enqueue(
        SEND_JOB,
        {"notification_id": notification.pk},
        at=send_at if due_later else None,
        user=notification.recipient,
    )
    Notification.objects.filter(pk=notification.pk).update(job_run=run)
    notification.job_run = run
    return notification


def notification_cancel(notification: Notification, *, reason: str = "cancelled before it was due") -> Notification:
    """Cancel a notification that has not been sent yet (a reminder): it will never be sent."""
    with transaction.atomic():
        locked = Notification.objects.select_for_update().get(pk=notification.pk)
        if locked.status != Notification.Status.QUEUED:
            raise NotCancellable(f"notification {locked.pk} is {locked.status}; only a queued one can be cancelled")
        locked.status = Notification.Status.CANCELLED
        locked.reason = reason[:300]
        locked.save(update_fields=["status", "reason", "updated_at"])
        if locked.job_run_id:
            # Not needed for correctness (the send job sees the status and does nothing), but a
            # cancelled run is what an operator expects to see, and it leaves the delayed set.
            run = JobRun.objects.filter(pk=locked.job_run_id, status__in=JobRun.ACTIVE_STATUSES).first()
            if run is not None:
                # InvalidTransition: it finished meanwhile; the send job's status check still holds.
                with contextlib.suppress(InvalidTransition):
                    job_run_cancel(run, reason=f"notification {locked.pk} cancelled")
    event_sequence_after(locked.pk)  # a cancelled event lets the next one of its resource go
    return locked


def notifications_cancel(notifications: Iterable[Notification]) -> int:
    """Cancel each queued notification among `notifications`; returns how many were cancelled."""
    cancelled = 0
    for notification in notifications:
        try:
            notification_cancel(notification)
            cancelled += 1
        except NotCancellable:
            pass
    return cancelled


# --- replay: send a webhook event again, with the same id --------------------------------

REPLAYABLE = (Notification.Status.SENT, Notification.Status.FAILED, Notification.Status.SUPPRESSED)
# What "failed events" means for a replay: refused or given up, or held back while the endpoint was off.
UNDELIVERED = (Notification.Status.FAILED, Notification.Status.SUPPRESSED)
# One request replays at most this many events; ask again with a later `since` for more.
REPLAY_LIMIT = 1000


def webhook_event_replay(notification: Notification) -> Notification:
    """Send a webhook event again as it was (same id and body), as a new attempt; NotReplayable if it cannot be."""
    with transaction.atomic():
        locked = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("webhook_endpoint")
            .get(pk=notification.pk)
        )
        _check_replayable(locked)
        # Conditional on the status read: a send that claimed it meanwhile keeps it.
        if not Notification.objects.filter(pk=locked.pk, status=locked.status).update(
            status=Notification.Status.QUEUED, reason="", send_at=None, updated_at=timezone.now()
        ):
            raise NotReplayable(f"notification {locked.pk} changed meanwhile; try again")
        locked.status, locked.reason, locked.send_at = Notification.Status.QUEUED, "", None
        notification_enqueue(locked)
    logger.info("webhook event %s queued again for endpoint %s", locked.pk, locked.webhook_endpoint_id)
    return locked


def _check_replayable(notification: Notification) -> None:
    if notification.channel != Channel.WEBHOOK:
        raise NotReplayable(f"notification {notification.pk} is {notification.channel}; only webhooks are replayed")
    if notification.status not in REPLAYABLE:
        raise NotReplayable(f"event {notification.pk} is {notification.status}: it is being delivered already")
    if not notification.webhook_endpoint.active:
        raise NotReplayable(f"endpoint {notification.webhook_endpoint_id} is disabled; re-enable it first")


def webhook_events_replay_failed(endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send again every undelivered event of `endpoint` made since `since` (oldest first, up to REPLAY_LIMIT)."""
    if not isinstance(since, datetime) or timezone.is_naive(since):
        raise NotificationInvalid("since must be a timezone-aware datetime")
    endpoint.refresh_from_db(fields=["active"])
    if not endpoint.active:
        raise NotReplayable(f"endpoint {endpoint.pk} is disabled; re-enable it first")
    ids = list(
        Notification.objects.filter(webhook_endpoint=endpoint, status__in=UNDELIVERED, created_at__gte=since)
        .order_by("pk")
        .values_list("pk", flat=True)[:REPLAY_LIMIT]
    )
    replayed = 0
    for pk in ids:
        try:
            webhook_event_replay(Notification(pk=pk))
            replayed += 1
        except NotReplayable:
            pass  # replayed or claimed meanwhile by someone else
    return replayed


def webhook_endpoints_replay_failed(endpoints: Iterable[WebhookEndpoint], since: datetime) -> int:
    """`webhook_events_replay_failed` for each active endpoint given (the admin action); how many were queued."""
    return sum(webhook_events_replay_failed(endpoint, since) for endpoint in endpoints if endpoint.active)


def webhook_events_replay(notifications: Iterable[Notification]) -> int:
    """`webhook_event_replay` each one that can be (the admin action); returns how many were queued."""
    replayed = 0
    for notification in notifications:
        try:
            webhook_event_replay(notification)
            replayed += 1
        except NotReplayable:
            pass
    return replayed


def webhook_endpoint_enable(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Turn a webhook endpoint back on after its owner fixed it, with a fresh failure count."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        active=True, consecutive_failures=0, disabled_at=None, disabled_reason="", updated_at=timezone.now()
    )
    endpoint.refresh_from_db()
    return endpoint


def webhook_endpoints_enable(endpoints: Iterable[WebhookEndpoint]) -> int:
    """Re-enable each of `endpoints` (the admin action); returns how many were disabled before."""
    return sum(1 for endpoint in endpoints if not endpoint.active and webhook_endpoint_enable(endpoint))


def notifications_reconcile() -> int:
    """Fail notifications left queued or sending by a send job that ended, then restart stuck event sequences.

    Returns how many were failed. An event waiting for the one before it has no send job on purpose:
    it is never failed here, and gets its job once everything before it is final."""
    stranded = Notification.objects.filter(
        status__in=(Notification.Status.QUEUED, Notification.Status.SENDING),
        job_run__status__in=JobRun.FINAL_STATUSES,
    ).values_list("pk", "status", "job_run_id", "job_run__status")
    fixed = 0
    for pk, status, run_id, run_status in stranded:
        # A worker lost on the last attempt leaves the row sending; nothing else will look at it again.
        what = "ended while sending it: outcome unknown" if status == "sending" else "ended without sending it"
        fixed += Notification.objects.filter(pk=pk, status=status).update(
            status=Notification.Status.FAILED,
            reason=f"its send job (run {run_id}, {run_status}) {what}"[:300],
            updated_at=timezone.now(),
        )
    # After the failing above, so that an event failed just now lets the next one of its resource go.
    event_sequences_restart()
    return fixed
