"""Job types the platform itself needs: a smoke test, the recovery pass, and retention."""

from jobs.registry import Payload, job_type


class PingPayload(Payload):
    message: str


class NoPayload(Payload):
    pass


@job_type("jobs.ping", payload=PingPayload, queue="default", timeout=30)
def ping(ctx, payload: PingPayload) -> dict:
    """Answer with the message: smoke tests, health checks and benchmarks."""
    return {"message": payload.message}


@job_type(
    "jobs.recover", payload=NoPayload, queue="critical", timeout=300, retry_delays=(), singleton_key=lambda p: "all"
)
def recover(ctx, payload: NoPayload) -> dict:
    """Re-queue runs Redis lost and retry runs whose worker died."""
    from jobs.services import job_runs_recover

    report = job_runs_recover()
    return {"requeued": len(report.requeued), "lost": len(report.lost), "stopped": len(report.stopped)}


@job_type("jobs.prune", payload=NoPayload, queue="low", timeout=3600, singleton_key=lambda p: "all")
def prune(ctx, payload: NoPayload) -> dict:
    """Delete finished runs past their retention, with their events and Redis leftovers."""
    from jobs.services import job_runs_prune

    return {"deleted": job_runs_prune().deleted}
