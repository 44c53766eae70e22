"""The one entry point every RQ job calls: `jobs.runner.execute(<JobRun id>)`.

Its dotted path is a wire contract (queued jobs name it): never rename it.

An attempt has three steps: claim the run (a database write), perform the handler
(no database of its own), record the outcome (a database write). A SimpleWorker, or
a direct call, does all three in `execute`. The forking KordantWorker claims and
records in its long-lived parent process instead, whose database connection stays
open from job to job, and its work horse only performs (see `Handoff`): a horse then
connects to the database only if its handler, or ctx.progress/ctx.cancelled, needs it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import traceback
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

from django.db import connections
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from jobs import services
from jobs.context import JobContext, cancel_reason, run_logger
from jobs.errors import JobCancelled, PayloadInvalid, PermanentJobError, RetryableJobError, UnknownJobType
from jobs.models import JobRun
from jobs.registry import registry

logger = logging.getLogger("jobs.runner")


def _worker_name() -> str:
    job = get_current_job()
    return (job and job.worker_name) or f"{socket.gethostname()}:inline"


def execute(job_run_id: str) -> None:
    """Run one attempt of a JobRun and record its outcome; never raises for a handler error."""
    if _handoff is not None and _handoff.is_for(job_run_id):
        _handoff.perform_and_report()
        return
    _drop_broken_connections()
    try:
        worker = _worker_name()
        run = claim(job_run_id, worker)
        if run is not None:
            try:
                record(run, perform(run, worker), worker)
            finally:
                services.job_run_limits_release(run)
    finally:
        _drop_broken_connections()


def _drop_broken_connections() -> None:
    # A worker keeps its database connection from job to job (reconnecting costs more
    # than a no-op job); only one that saw an error and no longer answers is replaced.
    for connection in connections.all(initialized_only=True):
        if connection.errors_occurred and not connection.is_usable():
            connection.close()


# --- the three steps -------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How a handler's attempt ended: what `record` writes, and what a work horse reports."""

    status: str  # "completed", "failed" or "cancelled"
    result: Any = None
    error: str = ""
    error_type: str = ""
    traceback: str = ""
    permanent: bool = False
    retry_after: float | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Outcome:
        return cls(**json.loads(data))


def claim(job_run_id: str, worker: str) -> JobRun | None:
    """Mark the run running for this attempt; None if it must not start now."""
    run = services.job_run_mark_running(job_run_id, worker)
    if run is None:
        logger.info("[%s] run %s is not startable (done, cancelled, waiting or unknown); skipped", worker, job_run_id)
    return run


def perform(run: JobRun, worker: str) -> Outcome:
    """Validate the payload and call the handler; every handler error becomes an Outcome."""
    try:
        job_type = registry.get(run.job_type)
        payload = job_type.validate(run.payload)
    except (UnknownJobType, PayloadInvalid) as exc:
        return Outcome("failed", error=str(exc), error_type=type(exc).__name__, permanent=True)

    ctx = JobContext(run, worker)
    ctx.log.info("attempt %d of %d started", run.attempt, run.max_attempts)
    try:
        result = job_type.handler(ctx, payload)
    except JobCancelled as exc:
        return Outcome("cancelled", error=str(exc))
    except JobTimeoutException:
        return _failed(f"timed out after {run.timeout} s", "JobTimeout", permanent=False)
    except PermanentJobError as exc:
        return _failed(str(exc), type(exc).__name__, permanent=True)
    except RetryableJobError as exc:
        return _failed(str(exc), type(exc).__name__, permanent=False, retry_after=exc.retry_after)
    except Exception as exc:  # any other handler error is worth another attempt
        return _failed(str(exc) or repr(exc), type(exc).__name__, permanent=False)

    try:
        result = json.loads(json.dumps(result))  # results are JSON, like everything else
    except (TypeError, ValueError) as exc:
        return _failed(f"handler returned a result that is not JSON: {exc}", "ResultNotJSON", permanent=True)
    return Outcome("completed", result=result)


def _failed(error: str, error_type: str, *, permanent: bool, retry_after: float | None = None) -> Outcome:
    # Called inside the except block, so the traceback is the handler's.
    return Outcome(
        "failed",
        error=error,
        error_type=error_type,
        traceback=traceback.format_exc(),
        permanent=permanent,
        retry_after=retry_after,
    )


def record(run: JobRun, outcome: Outcome, worker: str) -> None:
    """Write an attempt's outcome to the run: completed, cancelled, retrying or failed."""
    log = run_logger(run, worker)
    # Every write below names this attempt (jobs/transitions.py): if the run has moved on
    # (declared lost and now retrying, or running again elsewhere) it matches nothing, and
    # the report is kept as an event only.
    if outcome.status == "completed":
        if services.job_run_mark_completed(run, outcome.result, worker):
            log.info("completed")
            return
        # The handler saw ctx.cancelled and returned early: that is a cancellation, not a success.
        reason = cancel_reason(run.pk) or "cancelled while running"
        if services.job_run_mark_cancelled(run, reason, worker, requested_only=True):
            return
    elif outcome.status == "cancelled":
        if services.job_run_mark_cancelled(run, cancel_reason(run.pk) or outcome.error, worker):
            return
    else:
        status = services.job_run_mark_failed(
            run,
            error=outcome.error,
            error_type=outcome.error_type,
            traceback=outcome.traceback,
            worker=worker,
            permanent=outcome.permanent,
            retry_after=outcome.retry_after,
        )
        if status is not None:
            log.warning("attempt %d failed (%s: %s) -> %s", run.attempt, outcome.error_type, outcome.error, status)
            return
    services.job_run_report_stale(run, outcome.status, worker)


# --- claim and record in a forking worker's parent, perform in its work horse -----------

# The handoff of the job in hand, set by the parent just before it forks; the work horse
# inherits it with the rest of the parent's memory.
_handoff: Handoff | None = None


class Handoff:
    """A run the forking worker's parent claimed, for its work horse to perform.

    The horse reports its Outcome in `outbox`, a file both processes share; a pipe could
    fill up and block a horse whose parent reads only once the horse has exited.
    """

    def __init__(self, run_id: str, run: JobRun | None, worker: str, outbox: BinaryIO):
        self.run_id = run_id
        self.run = run  # None: the parent found it not startable, so the horse does nothing
        self.worker = worker
        self.outbox = outbox
        self.parent_pid = os.getpid()
        self.recorded = False

    def is_for(self, run_id: str) -> bool:
        return os.getpid() != self.parent_pid and run_id == self.run_id

    # In the work horse:

    def perform_and_report(self) -> None:
        if self.run is None:
            return
        try:
            data = perform(self.run, self.worker).to_json()
            written = 0
            while written < len(data):
                written += os.pwrite(self.outbox.fileno(), data[written:], written)
        finally:
            # Only connections the handler opened: the parent's were set aside at fork.
            connections.close_all()

    # In the parent:

    def settle(self) -> None:
        """Record the outcome the horse reported, if it reported one and it is not recorded yet."""
        if self.recorded or self.run is None or os.getpid() != self.parent_pid:
            return
        outcome = self._reported()
        if outcome is None:
            return
        self.recorded = True
        try:
            _drop_broken_connections()
            record(self.run, outcome, self.worker)
        except Exception:
            # The worker must keep going; the recovery pass finds the run still running
            # with no execution and retries it.
            logger.exception("could not record the outcome of run %s", self.run_id)

    def finish(self) -> None:
        """After the horse is gone: record its outcome, or, if it reported none, the attempt as lost."""
        global _handoff
        _handoff = None
        self.settle()
        if self.run is None:
            return
        if not self.recorded:
            try:
                # A no-op when RQ saw the horse die and the worker already recorded that.
                services.job_run_mark_lost(
                    self.run_id, reason="work horse ended without reporting an outcome", attempt=self.run.attempt
                )
            except Exception:
                logger.exception("could not record the end of run %s", self.run_id)
        try:
            services.job_run_limits_release(self.run)
        except Exception:  # the slot expires on its own (jobs/limits.py)
            logger.exception("could not release the limit slot of run %s", self.run_id)

    def _reported(self) -> Outcome | None:
        fd = self.outbox.fileno()
        size = os.fstat(fd).st_size
        if not size:
            return None
        try:
            return Outcome.from_json(os.pread(fd, size, 0))
        except (ValueError, TypeError):  # a horse killed halfway through its report
            logger.warning("run %s: the work horse's report is incomplete; treated as lost", self.run_id)
            return None


def hand_off(job_run_id: str, worker: str, outbox: BinaryIO) -> Handoff | None:
    """In a forking worker's parent, before the fork: claim the run for the work horse.

    Returns None if the claim could not be made here (the database does not answer);
    the horse then claims and records by itself, as `execute` always does.
    """
    global _handoff
    os.ftruncate(outbox.fileno(), 0)
    try:
        _drop_broken_connections()
        run = claim(job_run_id, worker)
    except Exception:
        logger.exception("could not claim run %s in the worker; its work horse will try", job_run_id)
        _drop_broken_connections()
        return None
    _handoff = Handoff(job_run_id, run, worker, outbox)
    return _handoff
