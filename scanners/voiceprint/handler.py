"""The `voiceprint.batch` job type: analyse every pending voice sample (batch.py)."""

from jobs.registry import Payload, job_type


class BatchPayload(Payload):
    pass


@job_type("voiceprint.batch", payload=BatchPayload, queue="low", timeout=3600)
def batch(ctx, payload: BatchPayload) -> dict:
    """Analyse pending voice samples against their enrolled voices; store scores and verdicts."""
    from scanners.voiceprint.batch import analysis_jobs_run

    # Not a singleton: batches on several workers split the pending jobs between them (row claims).
    return analysis_jobs_run(progress=ctx.progress, cancelled=lambda: ctx.cancelled).as_dict()
