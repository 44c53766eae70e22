"""The `notifications.send` job type: deliver one notification (see notifications/delivery.py)."""

from pydantic import Field

from jobs import Payload, job_type
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


class NoPayload(Payload):
    pass


@job_type("notifications.reconcile", payload=NoPayload, queue="low", timeout=300, singleton_key=lambda p: "all")
def reconcile(ctx, payload: NoPayload) -> dict:
    """Fail notifications whose send job ended without recording an outcome (a lost worker)."""
    from notifications.services import notifications_reconcile

    return {"failed": notifications_reconcile()}
