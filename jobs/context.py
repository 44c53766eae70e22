import logging
import time

from django.utils import timezone

from jobs.errors import JobCancelled
from jobs.models import JobRun

# Handlers may report progress and poll cancellation in tight loops; the database
# hears about it at most this often.
PROGRESS_INTERVAL = 0.25
CANCEL_POLL_INTERVAL = 0.5


class ScopedLogger(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        return f"{self.extra['scope']} {msg}", kwargs


def run_logger(run: JobRun, worker: str) -> ScopedLogger:
    """The job type's logger, with every line saying which worker, job type and run."""
    return ScopedLogger(logging.getLogger(f"jobs.{run.job_type}"), {"scope": f"[{worker}][{run.job_type}:{run.pk}]"})


def cancel_reason(run_id) -> str:
    """A fresh look at the row: the reason the run was cancelled, or "" if it was not."""
    row = JobRun.objects.filter(pk=run_id).values_list("cancel_requested_at", "cancel_reason").first()
    if row is None or row[0] is None:
        return ""
    return row[1] or "cancelled"


class JobContext:
    """What a handler gets besides its payload: progress, cancellation and a scoped logger."""

    def __init__(self, run: JobRun, worker: str):
        self.run = run
        self.job_run_id = run.pk
        self.attempt = run.attempt
        self.worker = worker
        self.log = run_logger(run, worker)
        self._last_progress_write = 0.0
        self._last_cancel_poll = 0.0
        self._cancelled = False

    def progress(self, percent: float, message: str = "") -> None:
        """Report how far the run is (0–100) and what it is doing."""
        percent = max(0.0, min(100.0, float(percent)))
        now = time.monotonic()
        if percent < 100 and now - self._last_progress_write < PROGRESS_INTERVAL:
            return
        self._last_progress_write = now
        JobRun.objects.filter(pk=self.job_run_id).update(
            progress=percent, progress_message=message[:300], updated_at=timezone.now()
        )

    @property
    def cancelled(self) -> bool:
        """True once the run was cancelled or superseded; the handler should stop soon."""
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._last_cancel_poll >= CANCEL_POLL_INTERVAL:
            self._last_cancel_poll = now
            self._cancelled = JobRun.objects.filter(pk=self.job_run_id, cancel_requested_at__isnull=False).exists()
        return self._cancelled

    def cancel_reason(self) -> str:
        """A fresh look at the row: the reason the run was cancelled, or "" if it was not."""
        return cancel_reason(self.job_run_id)

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled("run was cancelled")
