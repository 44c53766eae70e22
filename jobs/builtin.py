"""Job types the platform itself needs: a smoke test, the recovery pass, and retention."""

from pydantic import Field

from jobs.registry import Payload, job_type


class PingPayload(Payload):
    message: str = Field(description="Any text: the run answers with it, which proves a worker ran it.")


class NoPayload(Payload):
    pass


@job_type(
    "jobs.ping",
    payload=PingPayload,
    queue="default",
    timeout=30,
    # Lets a schedule ping (the demo data has one): proof the scheduler fires, with no domain work.
    schedule_payload=lambda tick: {"message": f"scheduled ping for subscription {tick.subscription_id}"},
)
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


@job_type(
    "jobs.monitor", payload=NoPayload, queue="critical", timeout=60, retry_delays=(), singleton_key=lambda p: "all"
)
def monitor(ctx, payload: NoPayload) -> dict:
    """Check queue depths, waiting times, failure rate and the scheduler; alert staff once per incident."""
    from jobs.monitor import monitor_run

    return monitor_run()


class TierPayload(Payload):
    tier: str = Field(description="The tier whose schedules follow its configs again (basic, plus or premium).")


@job_type("jobs.sync_tier", payload=TierPayload, queue="high", timeout=3600, singleton_key=lambda p: p.tier)
def sync_tier(ctx, payload: TierPayload) -> dict:
    """Re-sync every schedule of a tier after its configs changed, in batches."""
    from jobs.scheduling import schedules_sync_tier

    report = schedules_sync_tier(payload.tier, progress=ctx.progress)
    return {"created": report.created, "updated": report.updated, "deleted": report.deleted}
