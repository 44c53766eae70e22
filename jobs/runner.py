"""The one entry point every RQ job calls: `jobs.runner.execute(<JobRun id>)`.

Its dotted path is a wire contract (queued jobs name it): never rename it.
"""

import json
import logging
import socket
import traceback

from django.db import connections
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from jobs import services
from jobs.context import JobContext
from jobs.errors import JobCancelled, PayloadInvalid, PermanentJobError, RetryableJobError, UnknownJobType
from jobs.models import JobRun
from jobs.registry import registry

logger = logging.getLogger("jobs.runner")


def _worker_name() -> str:
    job = get_current_job()
    return (job and job.worker_name) or f"{socket.gethostname()}:inline"


def execute(job_run_id: str) -> None:
    """Run one attempt of a JobRun and record its outcome; never raises for a handler error."""
    _drop_broken_connections()
    try:
        _execute(job_run_id)
    finally:
        _drop_broken_connections()


def _drop_broken_connections() -> None:
    # A worker keeps its database connection from job to job (reconnecting costs more
    # than a no-op job); only one that saw an error and no longer answers is replaced.
    for connection in connections.all(initialized_only=True):
        if connection.errors_occurred and not connection.is_usable():
            connection.close()


def _execute(job_run_id: str) -> None:
    worker = _worker_name()
    run = services.job_run_mark_running(job_run_id, worker)
    if run is None:
        logger.info("[%s] run %s is not startable (done, cancelled, waiting or unknown); skipped", worker, job_run_id)
        return
    ctx = JobContext(run, worker)
    try:
        job_type = registry.get(run.job_type)
        payload = job_type.validate(run.payload)
    except (UnknownJobType, PayloadInvalid) as exc:
        services.job_run_mark_failed(run, error=str(exc), error_type=type(exc).__name__, worker=worker, permanent=True)
        return

    ctx.log.info("attempt %d of %d started", run.attempt, run.max_attempts)
    try:
        result = job_type.handler(ctx, payload)
    except JobCancelled as exc:
        services.job_run_mark_cancelled(run, ctx.cancel_reason() or str(exc), worker)
        return
    except JobTimeoutException:
        _fail(ctx, run, f"timed out after {run.timeout} s", "JobTimeout", permanent=False)
        return
    except PermanentJobError as exc:
        _fail(ctx, run, str(exc), type(exc).__name__, permanent=True)
        return
    except RetryableJobError as exc:
        _fail(ctx, run, str(exc), type(exc).__name__, permanent=False, retry_after=exc.retry_after)
        return
    except Exception as exc:  # any other handler error is worth another attempt
        _fail(ctx, run, str(exc) or repr(exc), type(exc).__name__, permanent=False)
        return

    try:
        result = json.loads(json.dumps(result))  # results are JSON, like everything else
    except (TypeError, ValueError) as exc:
        _fail(ctx, run, f"handler returned a result that is not JSON: {exc}", "ResultNotJSON", permanent=True)
        return
    if services.job_run_mark_completed(run, result, worker):
        ctx.log.info("completed")
    else:
        # The handler saw ctx.cancelled and returned early: that is a cancellation, not a success.
        services.job_run_mark_cancelled(run, ctx.cancel_reason() or "cancelled while running", worker)


def _fail(ctx: JobContext, run: JobRun, error: str, error_type: str, *, permanent: bool, retry_after=None) -> None:
    status = services.job_run_mark_failed(
        run,
        error=error,
        error_type=error_type,
        traceback=traceback.format_exc(),
        worker=ctx.worker,
        permanent=permanent,
        retry_after=retry_after,
    )
    ctx.log.warning("attempt %d failed (%s: %s) -> %s", run.attempt, error_type, error, status)
