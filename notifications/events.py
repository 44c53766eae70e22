"""Job and resource events for webhook endpoints, carried as webhook notifications.

An event to an endpoint is one `Notification` (channel webhook, kind `job.completed`,
`alert.created`, ...) with its own `notifications.send` run (a resource event's once the event
before it is final, see below), so delivery, retries, the
delivery log, the circuit breaker and replay work for events exactly as for notifications.

Who gets what:

- Events are opt-in: an endpoint receives a job or resource event only if its `kinds` names
  it, or its prefix (`job.*`, `alert.*`). An empty `kinds` keeps meaning "every notification
  kind", so existing receivers never get shapes they did not ask for.
- Job events go to staff-owned endpoints for every run, and to a customer's endpoint only for
  runs about one of that customer's subscriptions; `job_types` narrows either (empty: all).
  `notifications.send` runs never make job events: delivering an event would make another.
- Resource events go only to endpoints of the resource's owner (the subscription's user).

Both kinds are made after the transaction that made the change commits; a rolled-back
change makes none. A resource event's id is uuid5 of the resource, its id and the
digest of its rendered state: every save of one row in one transaction renders the same
final state, so they collapse into one event (the endpoint's unique dedupe key), and a
change that renders the same as the last event (nothing a receiver can see) makes none.

Resource events reach each endpoint in order per resource, strictly: the events of one
resource to one endpoint form a sequence (`Notification.sequence_key`, "alert:42"), and only
its oldest unfinished event has a send job. An event made while an earlier one of its sequence
is still queued or sending is saved `queued` without a job, waiting; when the one before it is
final (sent, failed for good, suppressed, cancelled), `event_sequence_next` gives the next its
job. So an event being retried (1, 5, 15 minutes) holds back the later events of its resource
to that endpoint: that head-of-line blocking is the price of the order. Other resources and
other endpoints never wait. Creating an event and handing over to the next both lock the
endpoint's row first, so neither can miss the other; and `notifications_reconcile` calls
`event_sequence_next` for every waiting event, so a lost hand-over (a crash between the send
and the hand-over) delays a sequence, never strands it. A replay is an operator's explicit
"send this now": it gets its job at once, whatever the order.

The hot path (a job finishing) pays one in-memory check when nobody subscribes: the
subscribers are read once per EVENT_SUBSCRIBERS_TTL seconds per process (and at once
after an endpoint is saved in this process).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from jobs.models import JobRun
from notifications.kinds import (
    EVENT_KINDS,
    RESOURCE_EVENTS,
    RESOURCES,
    kind_get,
)
from notifications.models import Channel, Notification, WebhookEndpoint, event_subscribed

logger = logging.getLogger("notifications")

SEND_JOB = "notifications.send"
# Job types whose runs make no job events: sending an event is itself one of these runs.
SILENT_JOB_TYPES = frozenset({SEND_JOB})
EVENT_SUBSCRIBERS_TTL = 5.0
JOB_EVENT_FOR_STATUS = {
    JobRun.Status.COMPLETED: "job.completed",
    JobRun.Status.FAILED: "job.failed",
    JobRun.Status.RETRYING: "job.retrying",
    JobRun.Status.CANCELLED: "job.cancelled",
}
EVENT_NAMESPACE = uuid.UUID("6f1c3d2e-9a57-4b8e-8f0e-2c6b1d4a7e90")
_EVENT_PREFIXES = frozenset(name.partition(".")[0] for name in EVENT_KINDS)


# --- who subscribes (cached) --------------------------------------------------------------


@dataclass(frozen=True)
class Subscriber:
    endpoint_id: int
    owner_id: int
    staff: bool
    kinds: tuple[str, ...]
    job_types: frozenset[str]

    def wants(self, event: str) -> bool:
        return event_subscribed(self.kinds, event)


@dataclass(frozen=True)
class Subscribers:
    jobs: tuple[Subscriber, ...]
    resources: tuple[Subscriber, ...]


_cached: tuple[float, Subscribers | None] = (0.0, None)


def event_subscribers() -> Subscribers:
    """Active endpoints that asked for job or resource events, read at most every EVENT_SUBSCRIBERS_TTL s."""
    global _cached
    read_at, subscribers = _cached
    now = time.monotonic()
    if subscribers is not None and now - read_at < EVENT_SUBSCRIBERS_TTL:
        return subscribers
    rows = WebhookEndpoint.objects.filter(active=True).values_list(
        "pk", "owner_id", "owner__is_staff", "owner__is_active", "kinds", "job_types"
    )
    jobs, resources = [], []
    for pk, owner_id, is_staff, is_active, kinds, job_types in rows:
        kinds = tuple(kind for kind in kinds if isinstance(kind, str)) if isinstance(kinds, list) else ()
        job_types = job_types if isinstance(job_types, list) else []
        prefixes = {kind.partition(".")[0] for kind in kinds if kind in EVENT_KINDS or kind.endswith(".*")}
        if not prefixes & _EVENT_PREFIXES:
            continue
        # A hand-edited JSON list may hold anything: only strings count (see WebhookEndpoint.clean).
        types = frozenset(name for name in job_types or () if isinstance(name, str))
        subscriber = Subscriber(pk, owner_id, bool(is_staff and is_active), kinds, types)
        if "job" in prefixes:
            jobs.append(subscriber)
        if prefixes - {"job"}:
            resources.append(subscriber)
    subscribers = Subscribers(tuple(jobs), tuple(resources))
    _cached = (now, subscribers)
    return subscribers


def event_subscribers_forget() -> None:
    """Read the subscribers again on next use (an endpoint was saved or deleted here)."""
    global _cached
    _cached = (0.0, None)


# --- making events ------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    endpoint_id: int
    owner_id: int
    kind: str
    context: dict[str, Any]
    dedupe_key: str
    sequence_key: str | None = None  # resource events: "<resource>:<id>", sent in order per endpoint


def events_create(events: list[Event]) -> list[Notification]:
    """One webhook notification per event not made before (by dedupe key), in one insert, each queued to send."""
    from notifications.services import notification_enqueue

    if not events:
        return []
    # The subscribers may be a few seconds old: an endpoint deleted or disabled since gets nothing.
    live = set(
        WebhookEndpoint.objects.filter(pk__in={e.endpoint_id for e in events}, active=True).values_list("pk", flat=True)
    )
    events = [event for event in events if event.endpoint_id in live]
    owners = get_user_model().objects.in_bulk({event.owner_id for event in events})
    rows = [
        Notification(
            recipient=owners[event.owner_id],
            channel=Channel.WEBHOOK,
            kind=event.kind,
            context=kind_get(event.kind).validate(event.context),
            webhook_endpoint_id=event.endpoint_id,
            dedupe_key=event.dedupe_key,
            sequence_key=event.sequence_key,
        )
        for event in events
    ]
    with transaction.atomic():
        # Before anything is read: a hand-over running now either sees these rows or is seen by them.
        _sequences_lock({row.webhook_endpoint_id for row in rows if row.sequence_key})
        existing = set(
            Notification.objects.filter(
                webhook_endpoint_id__in={row.webhook_endpoint_id for row in rows},
                dedupe_key__in={row.dedupe_key for row in rows},
            ).values_list("webhook_endpoint_id", "dedupe_key")
        )
        new, seen = [], set(existing)
        for row in rows:
            key = (row.webhook_endpoint_id, row.dedupe_key)
            if key not in seen:
                seen.add(key)
                new.append(row)
        try:
            with transaction.atomic():
                Notification.objects.bulk_create(new)
        except IntegrityError:
            # Another process made some of these meanwhile: the unique key decides, row by row.
            new = [row for row in new if _insert_if_new(row)]
        waiting = _waiting_for_predecessor(new)
        if waiting:
            # Shown by the admin and the API, so "queued with no job" reads as what it is.
            Notification.objects.filter(pk__in=waiting).update(reason=WAITING)
        for row in new:
            if row.pk not in waiting:
                notification_enqueue(row)
    return new


# --- in order per resource ------------------------------------------------------------------

UNFINISHED = (Notification.Status.QUEUED, Notification.Status.SENDING)
WAITING = "waiting for the event before it (same resource, same endpoint)"


def _sequences_lock(endpoint_ids: set[int]) -> None:
    """Serialise the order decisions (a new event waits or goes; the next one goes) of these endpoints."""
    if not endpoint_ids:
        return
    endpoints = WebhookEndpoint.objects.filter(pk__in=endpoint_ids)
    if connection.vendor == "sqlite":
        # No row locks on SQLite: a write (changing nothing) takes its one write lock before any read.
        endpoints.update(consecutive_failures=F("consecutive_failures"))
    else:
        list(endpoints.select_for_update().order_by("pk").values_list("pk", flat=True))


def _waiting_for_predecessor(rows: list[Notification]) -> set[int]:
    """The pks among these new events that an earlier unfinished event of their sequence holds back."""
    sequenced = [row for row in rows if row.sequence_key]
    if not sequenced:
        return set()
    first_unfinished: dict[tuple[int, str], int] = {}
    for endpoint_id, key, pk in (
        Notification.objects.filter(
            webhook_endpoint_id__in={row.webhook_endpoint_id for row in sequenced},
            sequence_key__in={row.sequence_key for row in sequenced},
            status__in=UNFINISHED,
        )
        .order_by("pk")
        .values_list("webhook_endpoint_id", "sequence_key", "pk")
    ):
        first_unfinished.setdefault((endpoint_id, key), pk)
    return {
        row.pk
        for row in sequenced
        if first_unfinished.get((row.webhook_endpoint_id, row.sequence_key), row.pk) < row.pk
    }


def event_sequence_next(endpoint_id: int, sequence_key: str) -> Notification | None:
    """Give the oldest unfinished event of this sequence its send job if it has none yet; returns it then.

    Safe to call at any time and any number of times: it does nothing while that event is on its way.
    """
    from notifications.services import notification_enqueue

    with transaction.atomic():
        _sequences_lock({endpoint_id})
        head = (
            Notification.objects.select_related("recipient")
            .filter(webhook_endpoint_id=endpoint_id, sequence_key=sequence_key, status__in=UNFINISHED)
            .order_by("pk")
            .first()
        )
        if head is None or head.job_run_id is not None:
            return None  # all sent, or the head is being sent (or retried): its end hands over
        if head.reason == WAITING:
            Notification.objects.filter(pk=head.pk).update(reason="")
            head.reason = ""
        return notification_enqueue(head)  # its job reaches Redis when this commits


def event_sequence_after(notification_id: int) -> None:
    """Once a notification is final, start the next event of its sequence (if it is a resource event)."""
    event_sequences_after([notification_id])


def event_sequences_after(notification_ids: list[int]) -> None:
    """`event_sequence_after` for many notifications, with one query to find the final resource events among them."""
    if not notification_ids:
        return
    final = (
        Notification.objects.filter(
            pk__in=notification_ids, sequence_key__isnull=False, status__in=Notification.FINAL_STATUSES
        )
        .values_list("webhook_endpoint_id", "sequence_key")
        .distinct()
    )
    for endpoint_id, sequence_key in list(final):
        event_sequence_next(endpoint_id, sequence_key)


def event_sequences_restart() -> int:
    """`event_sequence_next` for every sequence with a waiting event (a lost hand-over); how many restarted."""
    stuck = (
        Notification.objects.filter(status=Notification.Status.QUEUED, job_run__isnull=True, sequence_key__isnull=False)
        .values_list("webhook_endpoint_id", "sequence_key")
        .distinct()
    )
    restarted = 0
    for endpoint_id, sequence_key in list(stuck):
        try:
            started = event_sequence_next(endpoint_id, sequence_key)
        except Exception:
            # One sequence that cannot be restarted now must not keep the others stuck; the next pass retries it.
            logger.exception("events %s to endpoint %s could not be restarted", sequence_key, endpoint_id)
            continue
        if started is not None:
            logger.warning("events %s to endpoint %s were stuck: restarted", sequence_key, endpoint_id)
            restarted += 1
    return restarted


def _insert_if_new(row: Notification) -> bool:
    row.pk = None
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        return False
    return True


# --- job events ---------------------------------------------------------------------------


def job_events_emit(run_id, status: str, job_type: str = "") -> list[Notification]:
    """The job event of a committed transition, to every endpoint that subscribes to it.

    `job_type`, when the caller knows it, filters the subscribers before the run is read.
    """
    event = JOB_EVENT_FOR_STATUS.get(status)
    subscribers = event_subscribers().jobs
    if event is None or not subscribers or job_type in SILENT_JOB_TYPES:
        return []  # the hot path's usual answer: no query
    candidates = [
        subscriber
        for subscriber in subscribers
        if subscriber.wants(event) and (not job_type or not subscriber.job_types or job_type in subscriber.job_types)
    ]
    if not candidates:
        return []
    run = (
        JobRun.objects.filter(pk=run_id)
        .values(
            "pk",
            "job_type",
            "status",
            "attempt",
            "max_attempts",
            "subscription_id",
            "subscription__user_id",
            "finished_at",
            "next_attempt_at",
            "error_type",
            "error",
        )
        .first()
    )
    if run is None or run["job_type"] in SILENT_JOB_TYPES or run["status"] != status:
        return []  # gone, or moved on before we looked: its next transition makes its own event
    owner_id = run["subscription__user_id"]
    targets = [
        subscriber
        for subscriber in candidates
        if (not subscriber.job_types or run["job_type"] in subscriber.job_types)
        and (subscriber.staff or (owner_id is not None and subscriber.owner_id == owner_id))
    ]
    context = {
        "job_run_id": str(run["pk"]),
        "job_type": run["job_type"],
        "status": status,
        "attempt": run["attempt"],
        "max_attempts": run["max_attempts"],
        "subscription_id": run["subscription_id"],
        "finished_at": _iso(run["finished_at"]),
        "next_attempt_at": _iso(run["next_attempt_at"]),
        "error_type": run["error_type"],
    }
    # A run retried by hand counts its attempts from 1 again: the finish time keeps keys apart.
    dedupe_key = f"{event}:{run['pk']}:{run['attempt']}:{_iso(run['finished_at'])}"
    return events_create(
        [
            Event(
                subscriber.endpoint_id,
                subscriber.owner_id,
                event,
                {**context, "error": run["error"][:2000] if subscriber.staff else ""},
                dedupe_key[:200],
            )
            for subscriber in targets
        ]
    )


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


# --- resource events ----------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """How one kind of resource is found, owned and rendered (as the API renders it)."""

    name: str
    queryset: Callable[[], Any]
    serializer: Callable[[], type]
    subscription_id: Callable[[Any], int | None]

    def render(self, obj) -> dict[str, Any]:
        data = self.serializer()(obj).data
        # JSON-shaped (dates as ISO strings), exactly as the API would send it.
        return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


@cache
def resources() -> dict[str, Resource]:
    # Imported here: the API's serializers import most of the project, which imports this app.
    from api.domain import AlertSerializer, RemovalRequestSerializer, ReportSerializer, TitleChangeSerializer
    from api.schedules import ScheduleSerializer
    from jobs.models import Schedule
    from reports.models import Report
    from scanners.darkwatch.models import Alert
    from scanners.hometitle.models import TitleChange
    from scanners.removebrokers.models import RemovalRequest

    found = {
        "alert": Resource(
            "alert",
            lambda: Alert.objects.select_related("item", "breach", "subscription"),
            lambda: AlertSerializer,
            lambda obj: obj.subscription_id,
        ),
        "title_change": Resource(
            "title_change",
            lambda: TitleChange.objects.select_related("property__subscription", "document"),
            lambda: TitleChangeSerializer,
            lambda obj: obj.property.subscription_id,
        ),
        "removal_request": Resource(
            "removal_request",
            lambda: RemovalRequest.objects.select_related("broker", "subscription"),
            lambda: RemovalRequestSerializer,
            lambda obj: obj.subscription_id,
        ),
        "report": Resource(
            "report",
            lambda: Report.objects.select_related("subscription"),
            lambda: ReportSerializer,
            lambda obj: obj.subscription_id,
        ),
        "schedule": Resource(
            "schedule",
            lambda: Schedule.objects.select_related("config", "subscription", "last_run"),
            lambda: ScheduleSerializer,
            lambda obj: obj.subscription_id,
        ),
    }
    assert tuple(found) == RESOURCES
    return found


def resource_changed(resource: str, action: str, pks: Iterable[int] | Callable[[], Iterable[int]]) -> None:
    """Make `<resource>.<action>` events for these rows once the caller's transaction commits.

    `pks` may be a callable, called only when some endpoint subscribes to resource events (so
    a bulk writer pays nothing otherwise). Call it before a delete: the rows are rendered now.
    """
    if f"{resource}.{action}" not in RESOURCE_EVENTS:
        raise ValueError(f"unknown resource event {resource}.{action}")
    if not event_subscribers().resources:
        return
    pks = sorted(set(pks() if callable(pks) else pks))
    if not pks:
        return
    snapshot = _snapshot(resource, pks) if action == "deleted" else None
    transaction.on_commit(partial(_resource_events_emit, resource, action, pks, snapshot))


def _snapshot(resource: str, pks: list[int]) -> list[tuple[int, int | None, dict]]:
    spec = resources()[resource]
    return [(obj.pk, spec.subscription_id(obj), spec.render(obj)) for obj in spec.queryset().filter(pk__in=pks)]


def _resource_events_emit(resource: str, action: str, pks: list[int], snapshot) -> None:
    try:
        resource_events_emit(resource, action, pks, snapshot)
    except Exception:
        # After commit, the change stands whatever happens here; the log says which events are missing.
        logger.exception("%s.%s events for %s could not be made", resource, action, pks[:20])


def resource_events_emit(resource: str, action: str, pks: list[int], snapshot=None) -> list[Notification]:
    """The events of committed changes to these rows (their state now; `snapshot` for a delete)."""
    from kordant.models import Subscription

    spec = resources()[resource]
    if snapshot is None:
        # Rows gone since (created and deleted in one transaction) make no created/updated event.
        snapshot = _snapshot(resource, pks)
    owners = dict(
        Subscription.objects.filter(pk__in={sub for _, sub, _ in snapshot if sub is not None}).values_list(
            "pk", "user_id"
        )
    )
    subscribers = event_subscribers().resources
    occurred_at = timezone.now().isoformat()
    events = []
    for pk, subscription_id, rendered in snapshot:
        owner_id = owners.get(subscription_id)
        if owner_id is None:
            continue  # not a customer's (a periodic job's schedule), or its subscription is gone
        version = "deleted" if action == "deleted" else _digest(rendered)
        event_id = str(uuid.uuid5(EVENT_NAMESPACE, f"{spec.name}:{pk}:{version}"))
        name = f"{spec.name}.{action}"
        context = {
            "event_id": event_id,
            "subscription_id": subscription_id,
            "resource": spec.name,
            "action": action,
            "resource_id": pk,
            "occurred_at": occurred_at,
            "object": rendered,
        }
        for subscriber in subscribers:
            if subscriber.owner_id == owner_id and subscriber.wants(name):
                events.append(
                    Event(
                        subscriber.endpoint_id,
                        owner_id,
                        name,
                        context,
                        f"event:{event_id}",
                        sequence_key=f"{spec.name}:{pk}",
                    )
                )
    return events_create(events)


def _digest(rendered: dict) -> str:
    return hashlib.sha256(json.dumps(rendered, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
