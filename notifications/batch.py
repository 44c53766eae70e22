"""Delivering many notifications in one job: several in flight at once, each exactly as a single send.

A `notifications.send_batch` run hands its notification ids to a few threads
(NOTIFICATIONS_BATCH_CONCURRENCY). Each thread delivers one notification at a time through
`notification_deliver`, the same claim, send and record that `notifications.send` runs, on
its own database connection: the claim still commits before anything leaves the machine, SMS
and push are still at most once, a webhook still writes one delivery row per attempt and moves
its endpoint's circuit breaker, the SMS cap and disabled endpoints still suppress. What the
threads share is what makes a batch fast: the process's pooled HTTP clients (thread-safe
httpx clients) and one connection to the mail server for the batch's e-mails.

Each delivery keeps its own timeout (5 s for a webhook), so a receiver that hangs holds one
thread for that long and the others carry on; its endpoint's breaker opens after 5 failures
like anywhere else. Deliveries are ordered round-robin over endpoints, so one endpoint's many
events do not all sit in front of everyone else's.

Retries are the batch's: a notification that failed retryably is back in `queued` (as after a
single send's failed attempt) and the run raises ProviderUnavailable, so the job's backoff
runs the batch again, which sends only what is still queued (the rest is final and skipped).
A batch killed midway is the same story: its next attempt (or, after the last one,
`notifications.reconcile`) finds each notification where the claim left it.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
from collections import defaultdict, deque
from collections.abc import Callable

from django.conf import settings
from django.db import connections
from django.utils import timezone

from jobs.errors import JobCancelled, PermanentJobError, ProviderUnavailable, RetryableJobError
from notifications.delivery import clients_warm, mail_connection_shared, notification_deliver
from notifications.models import Notification

# Notifications one batch job may name: a payload is one JSON value in Redis and one row's column.
MAX_BATCH = 1000
_SHOWN_ERRORS = 5  # per-notification errors quoted in the run's result or error
_CANCEL_POLL = 0.5  # seconds between looks at whether the run was cancelled


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
    order, outcome = _delivery_order(ids)
    threads = max(1, min(concurrency or settings.NOTIFICATIONS_BATCH_CONCURRENCY, len(order) or 1))
    pending = deque(order)
    lock = threading.Lock()
    errors: dict[int, Exception] = {}
    stop = threading.Event()

    def deliver_until_done() -> None:
        try:
            while not stop.is_set():
                with lock:
                    if not pending:
                        return
                    pk = pending.popleft()
                try:
                    result = notification_deliver(pk, claimed_by=claimed_by, last_attempt=last_attempt)
                except Exception as exc:  # recorded on the notification by notification_deliver
                    with lock:
                        errors[pk] = exc
                        outcome[pk] = _failure_outcome(exc, last_attempt)
                else:
                    with lock:
                        outcome[pk] = "skipped" if "skipped" in result else result["status"]
        finally:
            # Each thread has its own database connection: close it, or each batch leaks them.
            connections.close_all()

    with mail_connection_shared():
        # Started from a copy of this context, the threads see the batch's shared mail connection.
        workers = [
            threading.Thread(target=contextvars.copy_context().run, args=(deliver_until_done,), daemon=True)
            for _ in range(threads)
        ]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                while worker.is_alive():
                    worker.join(_CANCEL_POLL)
                    if not stop.is_set() and cancelled():
                        stop.set()  # the operator cancelled the run: start nothing new
        except BaseException:
            # A job timeout or shutdown: take nothing new; what is in flight ends within its own timeout,
            # and the next attempt finds each notification where its claim left it.
            stop.set()
            for worker in workers:
                worker.join()
            raise
    if stop.is_set():
        # Cancelled: what it never reached stays queued, and notifications.reconcile fails it once the
        # run has ended (a cancelled fan-out is not sent later by surprise).
        reached = sum(1 for pk in ids if pk in outcome)
        raise JobCancelled(f"run was cancelled after {reached} of {len(ids)} notifications")
    return _summary(ids, outcome, errors, last_attempt)


def _delivery_order(ids: list[int]) -> tuple[list[int], dict[int, str]]:
    """The ids to deliver, round-robin over webhook endpoints; and the outcome of those not to deliver now."""
    now = timezone.now()
    rows = Notification.objects.filter(pk__in=ids).values_list("pk", "webhook_endpoint_id", "send_at", "status")
    found = {pk: (endpoint, send_at, status) for pk, endpoint, send_at, status in rows}
    outcome: dict[int, str] = {}
    lanes: dict[object, list[int]] = defaultdict(list)
    for pk in ids:
        if pk not in found:
            continue  # notification_deliver says it does not exist, as a single send would
        endpoint, send_at, status = found[pk]
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
    order += [pk for pk in ids if pk not in found]
    return order, outcome


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
