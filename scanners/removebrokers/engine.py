"""RemoveBrokers engine: submit due opt-outs, re-check submitted ones, within each broker's rate limit.

One pass (`removal_requests_process`) loops until nothing is due:

1. Claim a small batch of due requests with one conditional UPDATE (a random token and
   a lease). Only pending requests whose `next_attempt_at` has come, and submitted ones
   whose re-check is due, are claimable, and only if nobody else holds a live claim, so
   two workers never take the same request; every outcome is written back only where
   the token still matches. A worker that dies mid-batch loses nothing: its lease runs
   out and the next pass takes the requests again.
2. Pending, by the broker's method: API brokers get a POST (scanners/removebrokers/client.py;
   a batch's POSTs and searches are in flight together, up to REMOVEBROKERS_CONCURRENCY
   per broker, and recorded in order as if sent one by one),
   email brokers an opt-out email through Django's email backend, manual brokers become
   `needs_user_action` with the broker's instructions and a reminder. API and email
   submissions first take a slot of the broker's per-minute limit in Redis (shared by
   all workers); with none free the request waits, untouched, until one frees.
3. Submitted and due for re-check: the broker's search endpoint says whether the person
   is still listed. Not listed: confirmed. Still listed: submitted again, at most
   MAX_SUBMISSIONS times in all, then failed.

Temporary failures (timeouts, 5xx, 429, SMTP trouble) leave the request pending with
`last_error` and a later `next_attempt_at` (RETRY_DELAYS, or the broker's Retry-After
if longer); after REMOVEBROKERS_MAX_ATTEMPTS attempts it fails. A 4xx fails it at once.
"""

from __future__ import annotations

import logging
import math
import secrets
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from jobs.errors import ProviderRejected, ProviderUnavailable
from kordant.outbound import overlapped
from notifications.events import resource_changed
from scanners.removebrokers.client import BrokerClient
from scanners.removebrokers.models import DataBroker, RemovalRequest
from scanners.removebrokers.ratelimit import BrokerRateLimiter
from scanners.removebrokers.services import removal_request_notify, removal_request_remind

logger = logging.getLogger(__name__)

Status = RemovalRequest.Status
MAX_SUBMISSIONS = 3
# After the nth failed attempt, wait RETRY_DELAYS[n - 1] seconds (the last one repeats).
RETRY_DELAYS = (60, 300, 900, 3600, 6 * 3600)
BATCH_SIZE = 50
CLAIM_SECONDS = 300
_OUTCOME_FIELDS = [
    "status",
    "attempts",
    "submissions",
    "next_attempt_at",
    "claim_token",
    "claimed_until",
    "submitted_at",
    "confirmed_at",
    "rechecked_at",
    "broker_reference",
    "last_error",
    "updated_at",
]
# Outcomes are written at the end of each batch, or sooner once the oldest waited this long.
FLUSH_SECONDS = 2.0


@dataclass
class ProcessReport:
    """What one pass did, by outcome."""

    submitted: int = 0
    confirmed: int = 0
    needs_user_action: int = 0
    resubmitting: int = 0
    failed: int = 0
    retrying: int = 0
    rate_limited: int = 0
    rechecks_deferred: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = {name: value for name, value in self.__dict__.items() if name != "errors"}
        data["errors"] = self.errors[:20]
        return data


class RemovalEngine:
    """One pass over due requests; `run()` returns a ProcessReport."""

    def __init__(
        self,
        *,
        client: BrokerClient | None = None,
        limiter: BrokerRateLimiter | None = None,
        progress: Callable[[float, str], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        batch_size: int = BATCH_SIZE,
    ):
        self.client = client
        self.limiter = limiter or BrokerRateLimiter()
        self.progress = progress or (lambda percent, message="": None)
        self.cancelled = cancelled or (lambda: False)
        self.batch_size = batch_size
        self.report = ProcessReport()
        # Brokers found out of slots in this pass: their other requests wait without asking Redis again.
        self._full_until: dict[int, datetime] = {}
        # Submitted before this pass began: a request is never re-checked in the pass that submitted it.
        self._started = timezone.now()
        self._outbox: list[tuple[RemovalRequest, str, Callable[[], None] | None]] = []
        self._oldest_unwritten = math.inf
        # What `_prefetch` learned for the batch in hand, by request id: the rate limiter's
        # answer, and each broker API call's outcome (its value, or the error it raised).
        self._waits: dict[int, float] = {}
        self._answers: dict[int, tuple[bool, object]] = {}

    def run(self) -> ProcessReport:
        owns_client = self.client is None
        self.client = self.client or BrokerClient.from_settings()
        try:
            total = max(_due(self._started, self._started).count(), 1)
            done = 0
            while not self.cancelled():
                token, batch = self._claim()
                if not batch:
                    break
                self._prefetch(batch)
                for request in batch:
                    self._handle(request, token)
                    done += 1
                    if time.monotonic() - self._oldest_unwritten > FLUSH_SECONDS:
                        self._flush()
                    self.progress(min(99.0, 100.0 * done / total), f"{done} requests handled")
                self._flush()
        finally:
            self._flush()  # even when the pass dies: what was sent is recorded
            if owns_client:
                self.client.close()
        self.progress(100.0, f"{done} requests handled")
        return self.report

    # --- claiming ---------------------------------------------------------------------------

    def _claim(self) -> tuple[str, list[RemovalRequest]]:
        now = timezone.now()
        candidates = list(
            _due(now, self._started)
            .exclude(broker_id__in=self._full_brokers(now))
            .order_by("pk")  # oldest first; walks the primary key and stops at the batch size
            .values_list("pk", flat=True)[: self.batch_size]
        )
        if not candidates:
            return "", []
        token = secrets.token_hex(16)
        # The row's own conditions again inside the UPDATE (no join, so PostgreSQL re-checks
        # them on a row another worker just claimed): whoever updates a row first owns it.
        RemovalRequest.objects.filter(_claimable(now, self._started), pk__in=candidates).update(
            claim_token=token, claimed_until=now + timedelta(seconds=CLAIM_SECONDS), updated_at=now
        )
        return token, list(RemovalRequest.objects.filter(claim_token=token).select_related("broker").order_by("pk"))

    def _full_brokers(self, now: datetime) -> list[int]:
        return [broker_id for broker_id, until in self._full_until.items() if until > now]

    def _save(self, request: RemovalRequest, token: str, then: Callable[[], None] | None = None, **values) -> None:
        """Queue an outcome (and the claim's release) for the next flush; `then` runs if it is written."""
        values.update(claim_token="", claimed_until=None, updated_at=timezone.now())
        for name, value in values.items():
            setattr(request, name, value)
        if not self._outbox:
            self._oldest_unwritten = time.monotonic()
        self._outbox.append((request, token, then))

    def _flush(self) -> int:
        """Write the queued outcomes in one transaction, each only where the claim is still ours.

        One commit per batch rather than per request: the commit is most of the cost of a
        fast broker. A crash before the flush loses those outcomes, never a request: the
        claims run out and the requests are sent again under the same idempotency key.
        """
        if not self._outbox:
            return 0
        outbox, self._outbox, self._oldest_unwritten = self._outbox, [], math.inf
        written = []
        with transaction.atomic():
            groups: dict[str, list[tuple[RemovalRequest, Callable[[], None] | None]]] = {}
            for request, token, then in outbox:
                groups.setdefault(token, []).append((request, then))
            for token, entries in groups.items():
                written += _write_claimed(token, entries)
            resource_changed("removal_request", "updated", [request.pk for request, _ in written])
            for _, then in written:
                if then is not None:
                    then()  # notifications join the same transaction
        return len(written)

    # --- the batch's broker API calls, overlapped ----------------------------------------------

    def _prefetch(self, batch: list[RemovalRequest]) -> None:
        """Make the batch's broker API calls at once, up to REMOVEBROKERS_CONCURRENCY per broker.

        Slots of the brokers' rate limits are taken first, in the batch's order, as the loop
        takes them; `_handle` then records each outcome in that order, exactly as if it had
        made the call itself, errors included (a call's error is raised where its request is
        handled). Only HTTP happens on the threads: no database, no outbox.
        """
        self._waits, self._answers = {}, {}
        calls: list[tuple[RemovalRequest, Callable[[], object]]] = []
        for request in batch:
            broker = request.broker
            if request.status == Status.SUBMITTED:
                calls.append((request, partial(self._search, request)))
            elif broker.method == DataBroker.Method.API:
                wait = self._waits[request.pk] = self.limiter.take(broker.pk, broker.rate_limit_per_minute)
                if wait <= 0:
                    calls.append((request, partial(self._post, request)))
        if len(calls) < 2 or settings.REMOVEBROKERS_CONCURRENCY <= 1:
            return  # nothing to overlap: `_handle` calls as it goes
        per_broker = {
            broker_id: threading.Semaphore(settings.REMOVEBROKERS_CONCURRENCY)
            for broker_id in {request.broker_id for request, _ in calls}
        }

        def call(entry: tuple[RemovalRequest, Callable[[], object]]) -> tuple[bool, object]:
            request, send = entry
            with per_broker[request.broker_id]:
                try:
                    return True, send()
                except Exception as exc:  # kept for `_handle`, which raises it where the loop would have
                    return False, exc

        in_flight = min(len(calls), settings.REMOVEBROKERS_CONCURRENCY * len(per_broker), self.client.max_connections)
        outcomes = overlapped(call, calls, max_in_flight=in_flight)
        self._answers = {request.pk: outcome for (request, _), outcome in zip(calls, outcomes, strict=True)}

    def _answer(self, request: RemovalRequest, send: Callable[[], object]) -> object:
        """The prefetched outcome of this request's API call (raised if it was an error), or the call made now."""
        prefetched = self._answers.pop(request.pk, None)
        if prefetched is None:
            return send()
        ok, value = prefetched
        if not ok:
            raise value
        return value

    def _post(self, request: RemovalRequest) -> str:
        broker = request.broker
        return self.client.submit(
            broker.name,
            broker.endpoint,
            {"request_id": f"kordant-{request.pk}", **request.person},
            idempotency_key=f"removal-{request.pk}-{request.submissions + 1}",
        )

    def _search(self, request: RemovalRequest) -> bool:
        return self.client.is_listed(request.broker.name, request.broker.search_url, request.person)

    # --- one request ------------------------------------------------------------------------

    def _handle(self, request: RemovalRequest, token: str) -> None:
        now = timezone.now()
        broker = request.broker
        if request.status == Status.SUBMITTED:
            self._recheck(request, token, now)
        elif broker.method == DataBroker.Method.MANUAL:

            def needs_action():
                removal_request_notify(request, "removebrokers.needs_action")
                removal_request_remind(request)
                self.report.needs_user_action += 1

            self._save(
                request, token, then=needs_action, status=Status.NEEDS_USER_ACTION, next_attempt_at=None, last_error=""
            )
        else:
            self._submit(request, token, now)

    def _submit(self, request: RemovalRequest, token: str, now: datetime) -> None:
        broker = request.broker
        wait = self._waits.pop(request.pk, None)
        if wait is None:
            wait = self.limiter.take(broker.pk, broker.rate_limit_per_minute)
        if wait > 0:
            until = now + timedelta(seconds=wait)
            self._full_until[broker.pk] = until
            self._save(request, token, next_attempt_at=until)
            self.report.rate_limited += 1
            return
        attempts = request.attempts + 1
        try:
            if broker.method == DataBroker.Method.API:
                reference = self._answer(request, partial(self._post, request))
            else:
                reference = _send_opt_out_email(request)
        except ProviderRejected as exc:
            self._fail(request, token, attempts=attempts, error=str(exc))
            return
        except ProviderUnavailable as exc:
            self._retry_later(request, token, attempts=attempts, error=str(exc), retry_after=exc.retry_after)
            return
        recheck_at = now + timedelta(days=broker.recheck_days) if broker.search_url else None
        self._save(
            request,
            token,
            then=self._count("submitted"),
            status=Status.SUBMITTED,
            attempts=attempts,
            submissions=request.submissions + 1,
            submitted_at=now,
            broker_reference=reference,
            next_attempt_at=recheck_at,
            last_error="",
        )

    def _recheck(self, request: RemovalRequest, token: str, now: datetime) -> None:
        broker = request.broker
        try:
            listed = self._answer(request, partial(self._search, request))
        except (ProviderUnavailable, ProviderRejected) as exc:
            # The opt-out stands; only the check failed. Ask again later, sooner if it may pass soon.
            later = RETRY_DELAYS[-1] if isinstance(exc, ProviderUnavailable) else broker.recheck_days * 86400
            self._save(request, token, next_attempt_at=now + timedelta(seconds=later), last_error=f"re-check: {exc}")
            self.report.rechecks_deferred += 1
            self.report.errors.append(f"request {request.pk}: re-check: {exc}")
            return
        if not listed:

            def confirmed():
                removal_request_notify(request, "removebrokers.confirmed")
                self.report.confirmed += 1

            self._save(
                request,
                token,
                then=confirmed,
                status=Status.CONFIRMED,
                confirmed_at=now,
                rechecked_at=now,
                last_error="",
            )
        elif request.submissions >= MAX_SUBMISSIONS:
            error = f"still listed after {request.submissions} submissions"
            self._save(
                request,
                token,
                then=self._count("failed"),
                status=Status.FAILED,
                rechecked_at=now,
                next_attempt_at=None,
                last_error=error,
            )
        else:
            self._save(
                request,
                token,
                then=self._count("resubmitting"),
                status=Status.PENDING,
                rechecked_at=now,
                next_attempt_at=now,
                last_error="still listed",
            )

    def _count(self, outcome: str) -> Callable[[], None]:
        def count():
            setattr(self.report, outcome, getattr(self.report, outcome) + 1)

        return count

    def _fail(self, request: RemovalRequest, token: str, *, attempts: int, error: str) -> None:
        self.report.errors.append(f"request {request.pk}: {error}")
        self._save(
            request,
            token,
            then=self._count("failed"),
            status=Status.FAILED,
            attempts=attempts,
            next_attempt_at=None,
            last_error=error,
        )

    def _retry_later(
        self, request: RemovalRequest, token: str, *, attempts: int, error: str, retry_after: float | None
    ) -> None:
        if attempts >= settings.REMOVEBROKERS_MAX_ATTEMPTS:
            self._fail(request, token, attempts=attempts, error=f"gave up after {attempts} attempts: {error}")
            return
        delay = max(RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1], retry_after or 0)
        self.report.errors.append(f"request {request.pk}: {error}")
        self._save(
            request,
            token,
            then=self._count("retrying"),
            attempts=attempts,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            last_error=error,
        )


def _write_claimed(token: str, entries: list) -> list:
    """Write the in-memory requests whose claim is still `token`, in one executemany; the entries written.

    The whole outcome row comes from memory: while a claim holds, nobody else writes it.
    The claim check is in each UPDATE (a read first would make SQLite's deferred
    transaction fail to upgrade to a write lock when another worker writes in between).
    One prepared statement for all rows (psycopg pipelines it): the ORM's per-row
    compile was most of a flush.
    """
    stamp = timezone.now()
    fields = [RemovalRequest._meta.get_field(name) for name in _OUTCOME_FIELDS]
    table = connection.ops.quote_name(RemovalRequest._meta.db_table)
    assignments = ", ".join(f"{connection.ops.quote_name(field.column)} = %s" for field in fields)
    sql = f"UPDATE {table} SET {assignments} WHERE id = %s AND claim_token = %s"
    rows = []
    for request, _ in entries:
        request.updated_at = stamp
        rows.append(
            [field.get_db_prep_save(getattr(request, field.attname), connection) for field in fields]
            + [request.pk, token]
        )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
        count = cursor.rowcount
    if count == len(entries):
        return entries
    # Someone took a claim over (ours had run out): find which rows are ours by the stamp.
    ours = set(
        RemovalRequest.objects.filter(pk__in=[r.pk for r, _ in entries], claim_token="", updated_at=stamp).values_list(
            "pk", flat=True
        )
    )
    for request, _ in entries:
        if request.pk not in ours:
            logger.warning("removal request %s: claim lost before its outcome was written", request.pk)
    return [entry for entry in entries if entry[0].pk in ours]


def _claimable(now: datetime, started: datetime) -> Q:
    """Due and not held by a live claim, on the request row's own columns."""
    unclaimed = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    pending = Q(status=Status.PENDING) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    recheck = Q(status=Status.SUBMITTED, next_attempt_at__lte=now, submitted_at__lt=started)
    return unclaimed & (pending | recheck)


def _due(now: datetime | None = None, started: datetime | None = None):
    """Requests a pass may claim now: due pending ones, and submitted ones due for a re-check."""
    now = now or timezone.now()
    return RemovalRequest.objects.filter(_claimable(now, started or now), broker__active=True).exclude(
        status=Status.SUBMITTED, broker__search_url=""
    )


def _send_opt_out_email(request: RemovalRequest) -> str:
    """Mail the opt-out to the broker; the Message-ID is the reference."""
    broker = request.broker
    submission = request.submissions + 1
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip(">") or "kordant.example"
    message_id = f"<removal-{request.pk}-{submission}@{domain}>"
    lines = [
        f"To {broker.name},",
        "",
        "Under applicable privacy law (including the CCPA and GDPR where they apply), please delete the",
        "personal information you hold about the person below, stop selling or sharing it, and remove",
        "them from your listings. Please confirm by replying to this message.",
        "",
        *(f"{name.replace('_', ' ').capitalize()}: {value}" for name, value in request.person.items()),
        "",
        f"Request reference: kordant-{request.pk}",
    ]
    email = EmailMessage(
        subject=f"Personal data deletion and opt-out request (kordant-{request.pk})",
        body="\n".join(lines),
        to=[broker.endpoint],
        reply_to=[request.person["email"]] if request.person.get("email") else None,
        headers={"Message-ID": message_id},
    )
    try:
        email.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        raise ProviderRejected(f"{broker.name}: the mail server refused {broker.endpoint}: {exc}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise ProviderUnavailable(f"{broker.name}: the opt-out email could not be sent: {exc}") from exc
    return message_id


def removal_requests_process(**kwargs) -> ProcessReport:
    """Submit every due opt-out and re-check every due submission; see the module docstring."""
    return RemovalEngine(**kwargs).run()
