"""KordantScheduler: the rq-scheduler subclass that `manage.py rqscheduler` runs (settings.RQ).

Each pass, under rq-scheduler's lock, it moves due delayed runs (delay/at, retries)
to their queues and, once a minute, runs the recovery pass.
"""

import logging
import time

from django.db import close_old_connections
from rq_scheduler import Scheduler

from jobs.services import delayed_runs_push_due, job_runs_recover

logger = logging.getLogger("jobs.scheduler")


class KordantScheduler(Scheduler):
    # rqscheduler's default --interval is 60 s; due runs must start within a couple of seconds.
    poll_seconds = 1.0
    recovery_every = 60.0

    def __init__(self, *args, interval=60, **kwargs):
        super().__init__(*args, interval=min(interval, self.poll_seconds), **kwargs)
        self._last_recovery = 0.0

    def enqueue_jobs(self):
        close_old_connections()
        try:
            # Stock entries (none of ours yet) go through rq-scheduler's own path.
            super().enqueue_jobs()
            moved = delayed_runs_push_due()
            if moved:
                logger.info("moved %d due run(s) to their queues", moved)
            if time.monotonic() - self._last_recovery >= self.recovery_every:
                self._last_recovery = time.monotonic()
                report = job_runs_recover()
                if report.requeued or report.lost or report.stopped:
                    logger.warning("recovery: %s", report)
        finally:
            close_old_connections()
