"""The `removebrokers.process` job type: one pass over due opt-out requests (engine.py)."""

from jobs.registry import Payload, job_type


class ProcessPayload(Payload):
    pass


@job_type("removebrokers.process", payload=ProcessPayload, queue="default", timeout=3600)
def process(ctx, payload: ProcessPayload) -> dict:
    """Submit due opt-out requests to data brokers and re-check submitted ones."""
    from scanners.removebrokers.engine import removal_requests_process

    # Not a singleton on purpose: passes on several workers split the due requests between
    # them (row claims) and share each broker's rate limit (Redis).
    return removal_requests_process(progress=ctx.progress, cancelled=lambda: ctx.cancelled).as_dict()
