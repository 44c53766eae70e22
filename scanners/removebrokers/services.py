"""RemoveBrokers writes: filing requests, operator actions, and the notifications they send."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.events import resource_changed
from scanners.removebrokers.models import PERSON_FIELDS, DataBroker, RemovalRequest

logger = logging.getLogger(__name__)

Status = RemovalRequest.Status


class RemovalRequestInvalid(ValueError):
    """The person's details do not satisfy a broker (missing or unknown fields); nothing was created."""


def removal_requests_create(subscription, person: dict, brokers=None) -> list[RemovalRequest]:
    """File an opt-out with every active broker (or those given) that has none open; return the new requests."""
    brokers = list(brokers if brokers is not None else DataBroker.objects.filter(active=True))
    person = {name: str(value).strip() for name, value in person.items() if value not in (None, "")}
    unknown = sorted(set(person) - set(PERSON_FIELDS))
    if unknown:
        raise RemovalRequestInvalid(f"unknown person fields: {', '.join(unknown)}; known: {', '.join(PERSON_FIELDS)}")
    problems = [
        f"{broker.name} needs {', '.join(missing)}"
        for broker in brokers
        if (missing := [name for name in broker.required_fields if name not in person])
    ]
    if problems:
        raise RemovalRequestInvalid("; ".join(problems))

    created = []
    with transaction.atomic():
        for broker in brokers:
            fields = {name: person[name] for name in broker.required_fields}
            try:
                # The partial unique index, not a prior lookup, decides: a concurrent filing loses cleanly.
                with transaction.atomic():
                    created.append(
                        RemovalRequest.objects.create(subscription=subscription, broker=broker, person=fields)
                    )
            except IntegrityError:
                if not RemovalRequest.objects.filter(
                    subscription=subscription, broker=broker, status__in=RemovalRequest.OPEN_STATUSES
                ).exists():
                    raise
        if created:
            removal_requests_process_soon()
    return created


def removal_requests_process_soon():
    """Ask for a processing pass (one pending pass at a time; the every-minute system pass also covers it)."""
    from jobs import enqueue

    return enqueue("removebrokers.process", {}, dedupe_key="removebrokers.process", trigger="event")


def removal_request_retry(request: RemovalRequest) -> bool:
    """Send a failed (or stuck needs-user-action) request round again from scratch; False if another is open."""
    if request.status not in (Status.FAILED, Status.NEEDS_USER_ACTION):
        return False
    try:
        with transaction.atomic():
            updated = RemovalRequest.objects.filter(pk=request.pk, status=request.status).update(
                status=Status.PENDING,
                attempts=0,
                submissions=0,
                next_attempt_at=None,
                claim_token="",
                claimed_until=None,
                last_error="",
                updated_at=timezone.now(),
            )
    except IntegrityError:
        return False  # a newer open request for the same broker exists
    if updated:
        resource_changed("removal_request", "updated", [request.pk])
        removal_requests_process_soon()
    return bool(updated)


def removal_requests_retry(requests) -> int:
    """`removal_request_retry` for each request given (an admin action); how many went round again."""
    return sum(removal_request_retry(request) for request in requests)


def removal_requests_mark_done_by_user(requests) -> int:
    """`removal_request_mark_done_by_user` for each request given (an admin action); how many changed."""
    return sum(removal_request_mark_done_by_user(request) for request in requests.select_related("broker"))


def removal_request_mark_done_by_user(request: RemovalRequest) -> bool:
    """The customer completed a manual opt-out: it counts as submitted, re-checked like the others."""
    if request.status != Status.NEEDS_USER_ACTION:
        return False
    now = timezone.now()
    broker = request.broker
    updated = RemovalRequest.objects.filter(pk=request.pk, status=Status.NEEDS_USER_ACTION).update(
        status=Status.SUBMITTED,
        submissions=request.submissions + 1,
        submitted_at=now,
        next_attempt_at=now + timedelta(days=broker.recheck_days) if broker.search_url else None,
        updated_at=now,
    )
    if updated:
        resource_changed("removal_request", "updated", [request.pk])
    return bool(updated)


def removal_request_notify(request: RemovalRequest, kind: str, *, send_at=None, **context) -> bool:
    """Tell the customer about their request (removebrokers.confirmed, removebrokers.needs_action, reminder).

    The one place RemoveBrokers calls notifications; the dedupe key makes a repeated pass send nothing twice.
    """
    try:
        from notifications.services import notify
    except ImportError:  # notifications (issue 8) not installed yet
        logger.info("removal request %s: %s not sent (no notifications.services)", request.pk, kind)
        return False
    base = {"subscription_id": request.subscription_id, "broker": request.broker.name}
    if kind == "removebrokers.needs_action":
        base["instructions"] = _instructions(request.broker)
    if kind == "reminder":
        base = {}
    notify(
        request.subscription.user,
        kind,
        {**base, **context},
        send_at=send_at,
        dedupe_key=f"removebrokers:{request.pk}:{request.submissions}:{kind}",
    )
    return True


def removal_request_remind(request: RemovalRequest) -> bool:
    """Schedule the reminder for a manual opt-out the customer still has to do."""
    broker = request.broker
    return removal_request_notify(
        request,
        "reminder",
        send_at=timezone.now() + timedelta(days=settings.REMOVEBROKERS_REMINDER_DAYS),
        subject=f"Reminder: remove yourself from {broker.name}",
        message=f"You still need to opt out of {broker.name} yourself. {_instructions(broker)}",
    )


def _instructions(broker: DataBroker) -> str:
    text = broker.instructions.strip() or "Follow the broker's opt-out process."
    return f"{text} Opt-out page: {broker.endpoint}" if broker.endpoint else text
