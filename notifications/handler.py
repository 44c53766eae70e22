"""The `notifications.send` and `notifications.send_batch` job types (see notifications/delivery.py, batch.py)."""

from typing import Annotated

from pydantic import Field

from jobs import Payload, job_type
from notifications.batch import MAX_BATCH, notifications_deliver_batch
from notifications.delivery import clients_warm, notification_deliver


class SendPayload(Payload):
    notification_id: int = Field(description="The queued notification to deliver (never delivered twice).")


@job_type(
    "notifications.send",
    payload=SendPayload,
    queue="high",
    # Long enough for a slow SMTP server; webhooks give up after 5 s and the HTTP APIs after 10 s.
    timeout=120,
    dedupe_key=lambda payload: f"notification:{payload.notification_id}",
    # A forking worker's parent builds the HTTP clients once; each work horse inherits them.
    warm_up=clients_warm,
)
def send(ctx, payload: SendPayload) -> dict:
    """Deliver a queued email, SMS, push or signed webhook, never twice."""
    return notification_deliver(
        payload.notification_id,
        claimed_by=f"{ctx.job_run_id}:{ctx.attempt}",
        last_attempt=ctx.attempt >= ctx.run.max_attempts,
    )


class BatchPayload(Payload):
    notification_ids: list[Annotated[int, Field(gt=0)]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="The queued notifications to deliver, several at a time (each never delivered twice).",
    )


@job_type(
    "notifications.send_batch",
    payload=BatchPayload,
    queue="high",
    # Each delivery keeps its own timeout; a batch of 1000 over 32 threads, every one of them waiting
    # out a 10 s provider timeout, takes about 5 minutes. Killed sooner or later, nothing is lost.
    timeout=900,
    warm_up=clients_warm,
)
def send_batch(ctx, payload: BatchPayload) -> dict:
    """Deliver many queued notifications (a fan-out), several at a time, each never twice."""
    return notifications_deliver_batch(
        payload.notification_ids,
        claimed_by=f"{ctx.job_run_id}:{ctx.attempt}",
        last_attempt=ctx.attempt >= ctx.run.max_attempts,
        cancelled=lambda: ctx.cancelled,
    )


class NoPayload(Payload):
    pass


@job_type("notifications.reconcile", payload=NoPayload, queue="low", timeout=300, singleton_key=lambda p: "all")
def reconcile(ctx, payload: NoPayload) -> dict:
    """Fail notifications whose send job ended without recording an outcome (a lost worker)."""
    from notifications.services import notifications_reconcile

    return {"failed": notifications_reconcile()}
