"""Delivering many notifications in one job: several in flight at once, each exactly as a single send.

A `notifications.send_batch` run splits the work between its own thread and a few sending
threads (NOTIFICATIONS_BATCH_CONCURRENCY). The sending threads only send: the HTTP request or
SMTP transaction, over the process's pooled HTTP clients and one mail connection for the batch.
The batch's thread does every database write of e-mails and webhooks, a few notifications per
statement, with the same functions a single `notifications.send` uses:

- it claims a chunk of them (`notifications_claim`: queued -> sending, committed) before
  handing them to the senders, and keeps up to one chunk claimed ahead so no sender waits;
- it records what the senders report: successes a chunk at a time (`notifications_sent_record`,
  one transaction with their webhook delivery rows and breaker resets), a failure at once and in
  the order it happened (its delivery row, the endpoint's circuit breaker, the retry or failure),
  after recording the successes that came before it.

A sending thread holds no database connection and waits on nothing but its provider, so a slow
receiver costs one thread for its own timeout (5 s for a webhook) and the others carry on.
Deliveries are ordered round-robin over endpoints, so one endpoint's many events do not all sit
in front of everyone else's.

SMS and push are at most once: each is claimed by the thread that sends it, just before it
sends, through `notification_deliver` itself (its claim, SMS cap and "outcome unknown" rule).

Retries are the batch's: a notification that failed retryably is back in `queued` (as after a
single send's failed attempt) and the run raises ProviderUnavailable, so the job's backoff
runs the batch again, which sends only what is still queued (the rest is final and skipped).
A batch killed midway is the same story: its next attempt (or, after the last one,
`notifications.reconcile`) finds each notification where the claim left it. An e-mail or
webhook sent but not yet recorded (at most a chunk's worth) is sent again with the same
Message-ID or delivery id: at least once, as everywhere.
"""

from __future__ import annotations

import contextvars
import itertools
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from django.conf import settings
from django.db import connections
from django.db.models import F
from django.utils import timezone

from jobs.errors import JobCancelled, PermanentJobError, ProviderUnavailable, RetryableJobError
from notifications.delivery import (
    AT_MOST_ONCE,
    EndpointDisabled,
    Sent,
    clients_warm,
    mail_connection_shared,
    notification_deliver,
    notification_failure_record,
    notification_send,
    notifications_claim,
    notifications_sent_record,
)
from notifications.events import event_sequence_after, event_sequences_after
from notifications.models import Notification

# Notifications one batch job may name: a payload is one JSON value in Redis and one row's column.
MAX_BATCH = 1000
_SHOWN_ERRORS = 5  # per-notification errors quoted in the run's result or error
_CANCEL_POLL = 0.5  # seconds between looks at whether the run was cancelled
_RECORD_WITHIN = 0.1  # seconds a success may wait to be recorded with the next ones
_UNSENT = object()  # a sender's answer for a claimed notification it did not send (stopped, or breaker open)


def notifications_deliver_batch(
    notification_ids: list[int],
    *,
    claimed_by: str,
    last_attempt: bool,
    concurrency: int | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> dict:
    """Deliver each notification as `notification_deliver` would, several at a time; returns the counts.

    Raises ProviderUnavailable after the batch if any delivery failed retryably and attempts are left.
    Once `cancelled()` says so, no further delivery starts; those in flight finish.
    """
    ids = list(dict.fromkeys(notification_ids))
    clients_warm()  # built here, once: threads racing to build a cached client would each build one
    order, one_by_one, outcome = _delivery_order(ids)
    threads = max(1, min(concurrency or settings.NOTIFICATIONS_BATCH_CONCURRENCY, len(order) or 1))
    batch = _Batch(order, one_by_one, outcome, claimed_by=claimed_by, last_attempt=last_attempt, threads=threads)
    with mail_connection_shared():
        # Started from a copy of this context, the senders see the batch's shared mail connection.
        batch.run(cancelled)
    if batch.cancelled:
        # Cancelled: what it never reached stays queued, and notifications.reconcile fails it once the
        # run has ended (a cancelled fan-out is not sent later by surprise).
        reached = sum(1 for pk in ids if pk in outcome)
        raise JobCancelled(f"run was cancelled after {reached} of {len(ids)} notifications")
    return _summary(ids, outcome, batch.errors, last_attempt)


class _Batch:
    """One batch's deliveries: this thread claims and records, `threads` senders send."""

    def __init__(self, order, one_by_one, outcome, *, claimed_by: str, last_attempt: bool, threads: int):
        self.pending = deque(order)
        self.one_by_one = one_by_one  # delivered whole by a sender: SMS, push, and ids that do not exist
        self.outcome = outcome
        self.errors: dict[int, Exception] = {}
        self.claimed_by, self.last_attempt, self.threads = claimed_by, last_attempt, threads
        self.work: queue.SimpleQueue = queue.SimpleQueue()
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        self.in_flight = 0  # handed to the senders, not yet reported back
        self.sent: list[Sent] = []  # reported sent, not yet recorded
        self.sent_since = 0.0  # when the oldest of them was reported
        self.stop = threading.Event()
        self.cancelled = False  # by the operator (a stop may also be a timeout or an error)
        self.disabled: set[int] = set()  # webhook endpoints whose breaker a delivery of this batch opened

    def run(self, cancelled: Callable[[], bool]) -> None:
        senders = [
            threading.Thread(target=contextvars.copy_context().run, args=(self._send_until_told,), daemon=True)
            for _ in range(self.threads)
        ]
        for sender in senders:
            sender.start()
        try:
            self._deliver_all(cancelled)
        except BaseException:
            # A job timeout, shutdown or a failed claim: take nothing new; what is in flight ends within its
            # own timeout and is recorded, and the next attempt finds each notification where its claim left it.
            self.stop.set()
            while self.in_flight:
                self._take(self.done.get())
            self._record_sent()
            raise
        finally:
            for _ in senders:
                self.work.put(None)
            for sender in senders:
                while sender.is_alive():
                    sender.join(0.1)
                    self._release_unrecorded()

    def _release_unrecorded(self) -> None:
        """Let go of senders waiting for a failure to be recorded that never will be (this thread is
        leaving on an error): those notifications stay where their claim left them, for the next attempt."""
        try:
            while True:
                _item, _result, recorded = self.done.get_nowait()
                if recorded is not None:
                    recorded.set()
        except queue.Empty:
            pass

    def _deliver_all(self, cancelled: Callable[[], bool]) -> None:
        next_look = time.monotonic() + _CANCEL_POLL
        while (self.pending and not self.stop.is_set()) or self.in_flight:
            if self.in_flight <= self.threads and not self.stop.is_set():
                self._hand_out(2 * self.threads - self.in_flight)  # a chunk ahead, so no sender waits
            try:
                self._take(self.done.get(timeout=self._patience(next_look)))
                while True:
                    self._take(self.done.get_nowait())
            except queue.Empty:
                pass
            if len(self.sent) >= self.threads or not self.in_flight or self._patience(next_look) == 0:
                self._record_sent()
            if time.monotonic() >= next_look:
                next_look = time.monotonic() + _CANCEL_POLL
                if not self.stop.is_set() and cancelled():
                    self.stop.set()  # the operator cancelled the run: start nothing new
                    self.cancelled = True
        self._record_sent()

    def _patience(self, next_look: float) -> float:
        """Seconds to wait for the next report: until the next look at cancelling, or until the oldest
        unrecorded success is due to be recorded (one slow receiver must not hold up everyone's record)."""
        deadline = next_look if not self.sent else min(next_look, self.sent_since + _RECORD_WITHIN)
        return max(0.0, deadline - time.monotonic())

    def _hand_out(self, room: int) -> None:
        """Claim up to `room` of the pending notifications (those sent whole: pass on) and hand them out."""
        chunk = [self.pending.popleft() for _ in range(min(room, len(self.pending)))]
        to_claim = [pk for pk in chunk if pk not in self.one_by_one]
        claims = notifications_claim(to_claim, self.claimed_by) if to_claim else {}
        not_sent = []
        for pk in chunk:
            claim = claims.get(pk, pk)  # deleted since: delivered whole, which says it does not exist
            if isinstance(claim, (Notification, int)):
                self.work.put(claim)
                self.in_flight += 1
            elif isinstance(claim, dict):  # nothing to send: already handled, or suppressed
                self.outcome[pk] = "skipped" if "skipped" in claim else claim["status"]
                not_sent.append(pk)
            else:  # a failure found by the claim
                self.errors[pk], self.outcome[pk] = PermanentJobError(claim), "failed"
                not_sent.append(pk)
        event_sequences_after(not_sent)

    def _send_until_told(self) -> None:
        try:
            while (item := self.work.get()) is not None:
                result = self._send(item)
                if isinstance(item, Notification) and isinstance(result, Exception):
                    # Wait until the failure is recorded: if it opened the endpoint's breaker, the next
                    # delivery this sender takes must see that (as a single sender would).
                    recorded = threading.Event()
                    self.done.put((item, result, recorded))
                    recorded.wait()
                else:
                    self.done.put((item, result, None))
        finally:
            connections.close_all()  # a sender delivering SMS or push opened its own connection

    def _send(self, item: Notification | int) -> Sent | dict | Exception | object:
        try:
            if isinstance(item, int):
                return notification_deliver(item, claimed_by=self.claimed_by, last_attempt=self.last_attempt)
            if self.stop.is_set() or item.webhook_endpoint_id in self.disabled:
                return _UNSENT  # claimed ahead, but the batch stopped or the endpoint's breaker opened
            return notification_send(item)
        except Exception as exc:
            return exc

    def _take(self, report: tuple) -> None:
        """Note what a sender reports; a failure is recorded now, after the successes before it."""
        item, result, recorded = report
        self.in_flight -= 1
        pk = item if isinstance(item, int) else item.pk
        if isinstance(result, Sent):
            if not self.sent:
                self.sent_since = time.monotonic()
            self.sent.append(result)
            return
        if isinstance(result, dict):  # a whole delivery by notification_deliver
            self.outcome[pk] = "skipped" if "skipped" in result else result["status"]
            return
        if result is _UNSENT:
            _unclaimed(item)
            return
        if recorded is not None:
            try:
                self._record_sent()  # a webhook's failures count after the successes before them
                result = notification_failure_record(item, result, self.last_attempt)
                if isinstance(result, EndpointDisabled):
                    self.disabled.add(item.webhook_endpoint_id)
            finally:
                recorded.set()
            event_sequence_after(pk)
        self.errors[pk], self.outcome[pk] = result, _failure_outcome(result, self.last_attempt)

    def _record_sent(self) -> None:
        if not self.sent:
            return
        sent, self.sent = self.sent, []
        notifications_sent_record(sent)
        for item in sent:
            self.outcome[item.notification.pk] = Notification.Status.SENT
        event_sequences_after([item.notification.pk for item in sent if item.notification.sequence_key])


def _unclaimed(notification: Notification) -> None:
    """Undo the claim of a notification that was never sent: it is queued again, as if never reached."""
    Notification.objects.filter(
        pk=notification.pk, status=Notification.Status.SENDING, claimed_by=notification.claimed_by
    ).update(status=Notification.Status.QUEUED, attempts=F("attempts") - 1, updated_at=timezone.now())


def _delivery_order(ids: list[int]) -> tuple[list[int], set[int], dict[int, str]]:
    """The ids to deliver, round-robin over webhook endpoints; those a sender delivers whole (SMS,
    push, and ids that do not exist, which notification_deliver explains); and the outcome of those
    not to deliver now."""
    now = timezone.now()
    rows = Notification.objects.filter(pk__in=ids).values_list(
        "pk", "webhook_endpoint_id", "send_at", "status", "channel"
    )
    found = {pk: rest for pk, *rest in rows}
    outcome: dict[int, str] = {}
    lanes: dict[object, list[int]] = defaultdict(list)
    for pk in ids:
        if pk not in found:
            continue
        endpoint, send_at, status, _channel = found[pk]
        if status in Notification.FINAL_STATUSES:
            # A retried batch: what an earlier attempt finished can never change, so it needs no claim.
            outcome[pk] = "skipped"
            continue
        if send_at is not None and send_at > now:
            # Not due (a hand-made batch naming a reminder): its own delayed send job delivers it.
            outcome[pk] = "not due"
            continue
        lanes[endpoint].append(pk)
    interleaved = itertools.chain.from_iterable(itertools.zip_longest(*lanes.values()))
    order = [pk for pk in interleaved if pk is not None]
    missing = [pk for pk in ids if pk not in found]
    one_by_one = {pk for pk in order if found[pk][3] in AT_MOST_ONCE} | set(missing)
    return order + missing, one_by_one, outcome


def _failure_outcome(exc: Exception, last_attempt: bool) -> str:
    if isinstance(exc, PermanentJobError) or last_attempt:
        return "failed"
    return "retry"


def _summary(ids: list[int], outcome: dict[int, str], errors: dict[int, Exception], last_attempt: bool) -> dict:
    counts = {name: 0 for name in ("sent", "suppressed", "failed", "skipped", "not due", "retry")}
    for pk in ids:
        status = outcome.get(pk, "retry")  # never reached: a stop left it queued
        counts[status] = counts.get(status, 0) + 1
    shown = {str(pk): str(exc)[:300] for pk, exc in itertools.islice(errors.items(), _SHOWN_ERRORS)}
    retry = counts.pop("retry")
    if retry and not last_attempt:
        retry_after = [
            exc.retry_after for exc in errors.values() if isinstance(exc, RetryableJobError) and exc.retry_after
        ]
        first = next((f"notification {pk}: {error}" for pk, error in shown.items()), "stopped before sending")
        raise ProviderUnavailable(
            f"{retry} of {len(ids)} notifications will be retried; {first}",
            retry_after=max(retry_after) if retry_after else None,
        )
    if retry:  # the last attempt stopped before reaching them: notifications.reconcile fails them
        counts["left queued"] = retry
    return {"notifications": len(ids), **counts, "errors": shown}
