"""Delivering one notification: claim it under a row lock, send it, record the outcome.

Exactly once, as far as each channel allows:

- The claim (queued -> sending) happens under `select_for_update` and commits before
  anything leaves the machine; the outcome is written only by the claim that sent it.
  A notification that is sent, failed, suppressed or cancelled is never sent again, so
  a duplicated or retried `notifications.send` job does nothing.
- What no lock can settle is an attempt that stops after the provider may have accepted
  the message (the worker dies, a timeout after the request went out, a 2xx that is not
  the promised answer). Twilio and Expo take no idempotency key, so for SMS and push we
  choose at-most-once: such a notification is marked failed with "outcome unknown" and is
  not sent again. Email and webhooks are at-least-once: they are resent, and carry a
  stable id the receiving side can dedupe on (the Message-ID header; the Kordant-Delivery
  header). A failure before the request went out (connection refused) is always retried.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
import threading
from contextvars import ContextVar
from datetime import timedelta
from email.utils import parseaddr
from functools import lru_cache
from typing import NamedTuple

import httpx
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs.bulk import bulk_insert, bulk_update_rows
from jobs.errors import PermanentJobError, ProviderRejected, ProviderUnavailable
from jobs.models import JobRun
from kordant.outbound import Delivery
from notifications.events import event_sequence_after
from notifications.kinds import WEBHOOKS_DISABLED, Kind, kind_get, render_email, render_sms, webhook_event
from notifications.models import Channel, Notification, NotificationPreference, WebhookDelivery, WebhookEndpoint
from notifications.providers.push import ExpoPush
from notifications.providers.sms import TwilioSMS
from notifications.selectors import channel_address
from notifications.services import notify
from notifications.webhooks import WebhookSender

logger = logging.getLogger("notifications")
Status = Notification.Status

# A resend after an unknown outcome would reach a person twice, with no key to stop it.
AT_MOST_ONCE = frozenset({Channel.SMS, Channel.PUSH})
# Consecutive failed deliveries that disable a webhook endpoint (the circuit breaker).
WEBHOOK_FAILURE_LIMIT = 5
# Errors raised before the request left the machine: nothing can have been delivered.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class EndpointDisabled(ProviderRejected):
    """This failed webhook delivery opened its endpoint's circuit breaker: nothing more is sent to it."""


def notification_deliver(notification_id: int, *, claimed_by: str, last_attempt: bool) -> dict:
    """Send one notification by its channel unless it was already handled; the job's result says what happened."""
    try:
        return _deliver(notification_id, claimed_by=claimed_by, last_attempt=last_attempt)
    finally:
        # Every way a delivery ends (sent, failed for good, suppressed, already handled) passes here:
        # a resource event that is now final hands over to the next event of its resource.
        event_sequence_after(notification_id)


def _deliver(notification_id: int, *, claimed_by: str, last_attempt: bool) -> dict:
    notification = _claim(notification_id, claimed_by)
    if not isinstance(notification, Notification):
        return notification  # nothing to send: why, for the run's result
    try:
        sent = notification_send(notification)
    except Exception as exc:
        raised = notification_failure_record(notification, exc, last_attempt)
        if raised is exc:
            raise
        raise raised from exc
    notifications_sent_record([sent])
    return {"status": Status.SENT, "channel": notification.channel, "provider_message_id": sent.provider_message_id}


class Sent(NamedTuple):
    """A notification its provider took: what the outcome's record needs."""

    notification: Notification
    provider_message_id: str
    delivery: Delivery | None  # a webhook's request and answer, for its delivery row


def notification_send(notification: Notification) -> Sent:
    """Send a claimed notification by its channel and write nothing; raises what the provider's failure was."""
    return _SENDERS[notification.channel](notification, kind_get(notification.kind))


# --- claim -----------------------------------------------------------------------------


def _claim(notification_id: int, claimed_by: str) -> Notification | dict:
    """The claimed notification, or why there is nothing to send (a result); raises why it must fail."""
    claims = notifications_claim([notification_id], claimed_by)
    if notification_id not in claims:
        raise PermanentJobError(f"notification {notification_id} does not exist (deleted?)")
    outcome = claims[notification_id]
    if isinstance(outcome, str):
        raise PermanentJobError(outcome)
    return outcome


def notifications_claim(notification_ids: list[int], claimed_by: str) -> dict[int, Notification | dict | str]:
    """Claim these notifications in one transaction, each as a single send claims it: by id, the claimed
    notification (now `sending`), or why there is nothing to send, a result (dict) or a failure (str).
    Ids that do not exist are left out.

    Rows are locked in id order, so two batches claiming the same notifications in any order queue
    behind each other instead of deadlocking; each of them then sees what the other did.
    """
    now = timezone.now()
    # On SQLite, where select_for_update does nothing, the transaction holds the write lock from
    # its start (BEGIN IMMEDIATE, kordant/settings.py): a second claimer waits, then reads.
    with transaction.atomic():
        notifications = list(
            Notification.objects.select_for_update(of=("self",))
            .select_related("recipient", "webhook_endpoint")
            .filter(pk__in=notification_ids)
            .order_by("pk")
        )
        preferences = _preferences_of(notifications)
        claims = {}
        for notification in notifications:
            claims[notification.pk] = claim = _claim_decide(notification, claimed_by, now, preferences)
            if isinstance(claim, Notification) and claim.channel == Channel.SMS:
                # Saved at once: the next text's count of the user's recent texts (the SMS cap) sees it.
                claim.save(update_fields=_CLAIM_FIELDS)
        claimed = [
            claim for claim in claims.values() if isinstance(claim, Notification) and claim.channel != Channel.SMS
        ]
        bulk_update_rows(
            Notification,
            _CLAIM_FIELDS,
            [(claim.pk, *(getattr(claim, name) for name in _CLAIM_FIELDS)) for claim in claimed],
        )
    return claims


_CLAIM_FIELDS = ["status", "attempts", "claimed_at", "claimed_by", "address", "updated_at"]
_SENT_FIELDS = ["status", "sent_at", "provider_message_id", "error", "updated_at"]


def _preferences_of(notifications: list[Notification]) -> dict[tuple[int, str], NotificationPreference]:
    """The e-mail and push preferences of these notifications' recipients, by (user, channel), in one query.
    (An SMS reads its preference under a lock, for the SMS cap; a webhook has none.)"""
    wanted = {(n.recipient_id, n.channel) for n in notifications if n.channel in (Channel.EMAIL, Channel.PUSH)}
    if not wanted:
        return {}
    rows = NotificationPreference.objects.filter(
        user_id__in={user for user, _ in wanted}, channel__in={channel for _, channel in wanted}
    )
    return {(row.user_id, row.channel): row for row in rows}


def _claim_decide(
    notification: Notification, claimed_by: str, now, preferences: dict[tuple[int, str], NotificationPreference]
) -> Notification | dict | str:
    """What a claim does with this locked notification; a claimed one comes back ready to send."""
    if notification.status in Notification.FINAL_STATUSES:
        return {"status": notification.status, "skipped": "already handled"}
    if notification.status == Status.SENDING:
        if _claim_is_live(notification.claimed_by, claimed_by):
            return {"status": Status.SENDING, "skipped": f"run {notification.claimed_by} is sending it"}
        if notification.channel in AT_MOST_ONCE:
            _finish(notification, Status.FAILED, _unknown_outcome(notification, "its last attempt stopped"))
            return notification.reason  # raised once the transaction has committed the status
        # Email and webhooks: send again, with the same Message-ID / delivery id.

    reason = _reason_not_to_send(notification, now, preferences)
    if reason:
        _finish(notification, Status.SUPPRESSED, reason)
        return {"status": Status.SUPPRESSED, "reason": reason}
    notification.status = Status.SENDING
    notification.attempts += 1
    notification.claimed_at = now
    notification.claimed_by = claimed_by
    notification.updated_at = now
    return notification


def _claim_is_live(previous: str, current: str) -> bool:
    """Whether another run, still running, holds the claim; our own run's earlier attempt is over."""
    previous_run, current_run = previous.partition(":")[0], current.partition(":")[0]
    if not previous_run or previous_run == current_run:
        return False
    return JobRun.objects.filter(pk=previous_run, status=JobRun.Status.RUNNING).exists()


def _reason_not_to_send(
    notification: Notification, now, preferences: dict[tuple[int, str], NotificationPreference]
) -> str:
    """Why this notification must not go out now (and never will), or ""; sets the address it goes to."""
    channel = notification.channel
    if channel == Channel.WEBHOOK:
        endpoint = notification.webhook_endpoint
        if not endpoint.active:
            return f"webhook endpoint disabled: {endpoint.disabled_reason or 'by staff'}"
        notification.address = endpoint.url
        return ""
    if channel == Channel.SMS:
        # Locked so that two workers counting recent texts cannot both see room for one more.
        preference = (
            NotificationPreference.objects.select_for_update()
            .filter(user=notification.recipient, channel=channel)
            .first()
        )
    else:
        preference = preferences.get((notification.recipient_id, channel))
    address = channel_address(notification.recipient, channel, preference)
    if not address:
        turned_off = preference is not None and not preference.enabled
        return f"the user has turned {channel} off" if turned_off else f"no {channel} address"
    notification.address = address
    if channel == Channel.SMS:
        limit = settings.NOTIFICATIONS_SMS_PER_HOUR
        recent = (
            Notification.objects.filter(
                recipient=notification.recipient,
                channel=Channel.SMS,
                status__in=(Status.SENDING, Status.SENT),
                claimed_at__gt=now - timedelta(hours=1),
            )
            .exclude(pk=notification.pk)
            .count()
        )
        if limit and recent >= limit:
            return f"SMS rate limit: {recent} texts to this user in the last hour (NOTIFICATIONS_SMS_PER_HOUR={limit})"
    return ""


def _finish(notification: Notification, status: str, reason: str) -> None:
    notification.status = status
    notification.reason = reason[:300]
    notification.save(update_fields=["status", "reason", "updated_at"])


def _unknown_outcome(notification: Notification, what: str) -> str:
    return (
        f"outcome unknown: {what} after the request may have reached the provider; not resent, so the"
        f" {notification.channel} is never sent twice"
    )


# --- outcome ---------------------------------------------------------------------------


def notifications_sent_record(sent: list[Sent]) -> None:
    """Record sent notifications in one transaction: each webhook's delivery row and its endpoint's
    breaker reset, then each notification `sent`, by the claim that sent it and no other."""
    now = timezone.now()
    hooks = [item for item in sent if item.notification.channel == Channel.WEBHOOK]
    with transaction.atomic():
        if hooks:
            # Breakers to reset: locked in id order, so two batches resetting overlapping sets cannot deadlock
            # (and as UPDATE locks them, no_key, so the delivery rows' foreign keys do not wait on it).
            failing = list(
                WebhookEndpoint.objects.select_for_update(no_key=True)
                .filter(pk__in={item.notification.webhook_endpoint_id for item in hooks}, consecutive_failures__gt=0)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            if failing:
                WebhookEndpoint.objects.filter(pk__in=failing).update(consecutive_failures=0)
            bulk_insert(
                WebhookDelivery, [_webhook_delivery_row(item.notification, item.delivery, error="") for item in hooks]
            )
        # Locked in id order, as claims lock them: still sending, and by whom.
        claims = dict(
            Notification.objects.select_for_update(no_key=True)
            .filter(pk__in=[item.notification.pk for item in sent], status=Status.SENDING)
            .order_by("pk")
            .values_list("pk", "claimed_by")
        )
        rows = [
            (item.notification.pk, Status.SENT, now, item.provider_message_id[:200], "", now)
            for item in sent
            if claims.get(item.notification.pk) == item.notification.claimed_by
        ]
        bulk_update_rows(Notification, _SENT_FIELDS, rows)


def notification_failure_record(notification: Notification, exc: Exception, last_attempt: bool) -> Exception:
    """Record a failed attempt as a single send does (a webhook's delivery row and breaker first);
    return the error the job should raise."""
    if notification.channel == Channel.WEBHOOK:
        error = str(exc) or repr(exc)
        if _webhook_failure_recorded(notification, getattr(exc, "delivery", None), error=error):
            opened = EndpointDisabled(
                f"{exc}; endpoint disabled after {WEBHOOK_FAILURE_LIMIT} consecutive failed deliveries"
            )
            opened.__cause__ = exc
            exc = opened
    return _record_failure(notification, exc, last_attempt)


def _record_failure(notification: Notification, exc: Exception, last_attempt: bool) -> Exception:
    """Write a failed attempt to the notification; return the error the job should raise."""
    error = str(exc) or type(exc).__name__
    permanent = isinstance(exc, PermanentJobError)
    raised = exc
    if not permanent and notification.channel in AT_MOST_ONCE and _maybe_delivered(exc):
        status, reason = Status.FAILED, _unknown_outcome(notification, error)
        raised = PermanentJobError(reason)
    elif permanent or last_attempt:
        status, reason = Status.FAILED, ("refused: " if permanent else "gave up after retries: ") + error
    else:
        status, reason = Status.QUEUED, ""  # the job's next attempt sends it
    Notification.objects.filter(pk=notification.pk, status=Status.SENDING, claimed_by=notification.claimed_by).update(
        status=status, reason=reason[:300], error=error[:10_000], updated_at=timezone.now()
    )
    return raised


def _maybe_delivered(exc: Exception) -> bool:
    delivery = getattr(exc, "delivery", None)
    if delivery is None:  # refused before any request was made
        return False
    if delivery.status_code is None:  # no answer: did the request get out?
        return not isinstance(exc.__cause__, _NOT_SENT)
    # A 2xx we could not read: the provider took it. A refused push ticket has a code.
    return 200 <= delivery.status_code < 300 and getattr(exc, "provider_code", None) is None


# --- channels --------------------------------------------------------------------------


def _send_email(notification: Notification, kind: Kind) -> Sent:
    subject, text, html = render_email(kind, notification.context)
    # Stable across retries and hosts, so a resend after an unknown outcome can be collapsed.
    message_id = f"<notification-{notification.pk}@{_mail_domain()}>"
    message = EmailMultiAlternatives(subject, text, to=[notification.address], headers={"Message-ID": message_id})
    message.attach_alternative(html, "text/html")
    try:
        shared = _shared_mail.get()
        if shared is None:
            message.send()
        else:
            shared.send(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise ProviderRejected(f"mail server refused the recipient: {exc.recipients}") from exc
    except smtplib.SMTPResponseException as exc:
        cls = ProviderRejected if exc.smtp_code >= 500 else ProviderUnavailable
        detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        raise cls(f"mail server answered {exc.smtp_code}: {detail}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise ProviderUnavailable(f"mail server unavailable: {exc or type(exc).__name__}") from exc
    return Sent(notification, message_id, None)


class SharedMailConnection:
    """One mail-backend connection for many sends (a batch): opened at the first send, one send at a time.

    A send that fails closes it, so the next one starts on a fresh connection rather than a dead one.
    """

    def __init__(self):
        self._backend = None
        self._lock = threading.Lock()

    def send(self, message: EmailMultiAlternatives) -> None:
        with self._lock:
            if self._backend is None:
                backend = get_connection()
                backend.open()  # else the SMTP backend opens and closes a connection per send
                self._backend = backend
            message.connection = self._backend
            try:
                message.send()
            except Exception:
                self.close()
                raise

    def close(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            with contextlib.suppress(Exception):  # a connection that is already gone is closed enough
                backend.close()


_shared_mail: ContextVar[SharedMailConnection | None] = ContextVar("notifications_shared_mail", default=None)


@contextlib.contextmanager
def mail_connection_shared():
    """Send the e-mails delivered in this context (and threads started from a copy of it) over one connection."""
    shared = SharedMailConnection()
    token = _shared_mail.set(shared)
    try:
        yield shared
    finally:
        _shared_mail.reset(token)
        shared.close()


@lru_cache(maxsize=1)
def _mail_domain() -> str:
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "kordant.invalid"


def _send_sms(notification: Notification, kind: Kind) -> Sent:
    delivery = _sms_client(
        settings.TWILIO_API_BASE, settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_FROM_NUMBER
    ).send(notification.address, render_sms(kind, notification.context))
    return Sent(notification, delivery.provider_message_id, None)


@lru_cache(maxsize=4)
def _sms_client(base_url: str, account_sid: str, auth_token: str, from_number: str) -> TwilioSMS:
    # One pooled client per configuration and process: a connection per text costs a TLS handshake.
    return TwilioSMS(
        base_url=base_url, account_sid=account_sid, auth_token=auth_token, from_number=from_number, verify=_tls()
    )


def _send_push(notification: Notification, kind: Kind) -> Sent:
    client = _push_client(settings.EXPO_PUSH_URL, settings.EXPO_ACCESS_TOKEN)
    data = {"kind": kind.name, "notification_id": notification.pk}
    title, body = kind.render("push_title", notification.context), kind.render("push_body", notification.context)
    try:
        delivery = client.send(notification.address, title, body, data)
    except ProviderRejected as exc:
        if getattr(exc, "provider_code", None) == "DeviceNotRegistered":
            # The app was uninstalled: stop pushing to a token that will never work again.
            NotificationPreference.objects.filter(
                user=notification.recipient, channel=Channel.PUSH, address=notification.address
            ).update(address="")
        raise
    return Sent(notification, delivery.provider_message_id, None)


@lru_cache(maxsize=4)
def _push_client(base_url: str, access_token: str) -> ExpoPush:
    return ExpoPush(base_url=base_url, access_token=access_token or None, verify=_tls())


def _send_webhook(notification: Notification, kind: Kind) -> Sent:
    endpoint = notification.webhook_endpoint
    delivery_id = f"ntf_{notification.pk}"  # the same on every attempt: receivers dedupe on it
    delivery = _webhook_sender().deliver(
        endpoint.url,
        endpoint.secret,
        kind.name,
        delivery_id,
        webhook_event(kind, notification),
        scheme=endpoint.signature_scheme,
    )
    return Sent(notification, delivery_id, delivery)


@lru_cache(maxsize=1)
def _webhook_sender() -> WebhookSender:
    return WebhookSender(verify=_tls())


def _webhook_failure_recorded(notification: Notification, delivery: Delivery | None, *, error: str) -> bool:
    """Write the failed attempt's delivery row and move the endpoint's breaker; True if this attempt opened it."""
    endpoints = WebhookEndpoint.objects.filter(pk=notification.webhook_endpoint_id)
    with transaction.atomic():
        # The count moves in one UPDATE, which also locks the row: written before anything is
        # read, which SQLite needs (see notifications_claim).
        endpoints.update(consecutive_failures=F("consecutive_failures") + 1)
        _webhook_delivery_row(notification, delivery, error=error).save(force_insert=True)
        endpoint = endpoints.select_for_update().get()
        opened = endpoint.active and endpoint.consecutive_failures >= WEBHOOK_FAILURE_LIMIT
        if opened:
            endpoint.active = False
            endpoint.disabled_at = timezone.now()
            reason = f"{endpoint.consecutive_failures} consecutive failed deliveries; last: {error}"
            endpoint.disabled_reason = reason[:500]
            endpoint.save(update_fields=["active", "disabled_at", "disabled_reason", "updated_at"])
            # Opened once, under the lock, so the owner hears about it once.
            notify(
                endpoint.owner,
                WEBHOOKS_DISABLED,
                {
                    "endpoint_id": endpoint.pk,
                    "url": endpoint.url,
                    "failures": endpoint.consecutive_failures,
                    "last_error": error[:500],
                },
                dedupe_key=f"webhook-disabled:{endpoint.pk}:{endpoint.disabled_at.isoformat()}",
            )
            logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, endpoint.disabled_reason)
    return opened


def _webhook_delivery_row(notification: Notification, delivery: Delivery | None, *, error: str) -> WebhookDelivery:
    return WebhookDelivery(
        endpoint_id=notification.webhook_endpoint_id,
        notification=notification,
        attempt=notification.attempts,
        succeeded=not error,
        status_code=delivery.status_code if delivery else None,
        duration_ms=delivery.duration_ms if delivery else None,
        response_excerpt=delivery.response_excerpt if delivery else "",
        error=error[:2000],
        url=notification.address[:500],
        **_request_as_sent(delivery),
    )


# Events are small; a body past this is kept cut, with its length, so one row stays readable.
REQUEST_BODY_LOGGED = 256 * 1024


def _request_as_sent(delivery: Delivery | None) -> dict:
    """The delivery row's record of the request: headers and body exactly as they went out."""
    request = getattr(delivery, "request", None)
    if request is None:
        return {}  # refused before any request (a bad URL, an unserialisable payload)
    body = request.content
    text = body[:REQUEST_BODY_LOGGED].decode("utf-8", errors="replace")
    if len(body) > REQUEST_BODY_LOGGED:
        text += f"\n… ({len(body)} bytes in all)"
    return {"request_headers": dict(request.headers.items()), "request_body": text}


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle is most of what making an httpx client costs (100+ ms here): once.
    return httpx.create_ssl_context()


def clients_warm() -> None:
    """Build the HTTP clients now: a forking worker's work horses inherit them instead of each
    paying for TLS setup. No connection is opened until a send."""
    _webhook_sender()
    _push_client(settings.EXPO_PUSH_URL, settings.EXPO_ACCESS_TOKEN)
    # SMS may be unconfigured; the first text then reports which variable is missing.
    with contextlib.suppress(ProviderRejected):
        _sms_client(
            settings.TWILIO_API_BASE,
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            settings.TWILIO_FROM_NUMBER,
        )


_SENDERS = {
    Channel.EMAIL: _send_email,
    Channel.SMS: _send_sms,
    Channel.PUSH: _send_push,
    Channel.WEBHOOK: _send_webhook,
}
