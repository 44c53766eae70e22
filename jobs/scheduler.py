"""KordantScheduler: the rq-scheduler subclass that `manage.py rqscheduler` runs (settings.RQ).

At start, and every hour, it rebuilds every schedule entry from the database. Each pass, under
rq-scheduler's lock, it fires due schedule entries in bulk (jobs/scheduling.py),
hands any other rq-scheduler job to the stock path, moves due delayed runs (delay/at,
retries) to their queues, enqueues the built-in periodic jobs, copies finished runs'
outcomes onto their schedules, runs the recovery pass once a minute and writes a
heartbeat. Long passes renew the lock batch by batch, so a burst of 100,000 due
schedules cannot let a second scheduler in halfway.
"""

import logging
import time
from datetime import timedelta

import redis
from django.db import close_old_connections
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import JOB_ID_PATTERN
from rq_scheduler import Scheduler

from jobs import entries
from jobs.entrypoints import job_refusal, quarantine_record, shown
from jobs.scheduling import (
    FireReport,
    scheduler_heartbeat_write,
    schedules_fire,
    schedules_record_outcomes,
    schedules_sync_all,
    system_jobs_enqueue_due,
)
from jobs.services import delayed_runs_push_due, job_runs_recover
from jobs.worker import JSONJob

logger = logging.getLogger("jobs.scheduler")


class KordantScheduler(Scheduler):
    # rqscheduler's default --interval is 60 s; due runs must start within a couple of seconds.
    poll_seconds = 1.0
    recovery_every = 60.0
    # Entries a signal could not write (Redis away at that moment) come back within this.
    resync_every = 3600.0
    fire_batch = 2000

    def __init__(self, *args, interval=60, job_class=None, **kwargs):
        # Whatever the caller passes, jobs are loaded through the class that refuses foreign ones.
        super().__init__(*args, interval=min(interval, self.poll_seconds), job_class=JSONJob, **kwargs)
        self._last_recovery = 0.0
        self._last_resync = time.monotonic()  # run() syncs at start

    def run(self, burst=False):
        close_old_connections()
        self._resync("at start")
        super().run(burst=burst)

    def _resync(self, when: str) -> None:
        self._last_resync = time.monotonic()
        report = schedules_sync_all()
        if report.changed:
            logger.warning("schedules synced %s: %s", when, report)

    def enqueue_jobs(self):
        started = time.monotonic()
        close_old_connections()
        fired = self._step("firing schedules", self.fire_due) or FireReport()
        if fired.fired or fired.removed:
            logger.info("schedules fired: %s", fired)
        moved = self._step("moving delayed runs", delayed_runs_push_due)
        if moved:
            logger.info("moved %d due run(s) to their queues", moved)
        self._step("enqueueing built-in jobs", system_jobs_enqueue_due)
        # A minute of overlap: a run's commit can land after the pass that started next.
        self._step("recording outcomes", schedules_record_outcomes, since=timezone.now() - timedelta(minutes=1))
        if time.monotonic() - self._last_resync >= self.resync_every:
            self._step("hourly sync", self._resync, "(hourly)")
        if time.monotonic() - self._last_recovery >= self.recovery_every:
            self._last_recovery = time.monotonic()
            report = self._step("recovery", job_runs_recover)
            if report and (report.requeued or report.lost or report.stopped):
                logger.warning("recovery: %s", report)
        self._step(
            "heartbeat",
            scheduler_heartbeat_write,
            self.name,
            last_pass_seconds=time.monotonic() - started,
            fired=fired.fired,
            connection=self.connection,
        )
        close_old_connections()

    def _step(self, what: str, function, *args, **kwargs):
        # One failing step (a database restart, a Redis failover) must not end the scheduler:
        # it is logged, the rest of the pass runs, and the next pass, a second later, retries.
        try:
            return function(*args, **kwargs)
        except Exception:
            logger.exception("scheduler pass: %s failed; retrying next pass", what)
            close_old_connections()
            return None

    def fire_due(self) -> FireReport:
        """Fire every due entry, a batch at a time, renewing the lock between batches."""
        report = FireReport()
        previous = None
        while True:
            ours, others = entries.due_entries(time.time(), limit=self.fire_batch, connection=self.connection)
            if not (ours or others) or (ours, others) == previous:
                return report  # all done, or nothing moved last time: never spin
            previous = (ours, others)
            if ours:
                report += schedules_fire(ours)
            for member in others:
                self._enqueue_stock(member)
            self._renew_lock()

    def _enqueue_stock(self, member: bytes) -> None:
        # A plain rq-scheduler job somebody registered: rq-scheduler's own path, for a job
        # our job class accepts (jobs.entrypoints). Anything else is quarantined: left in
        # the set, it would raise again every second and hold up the entries behind it.
        try:
            job_id = member.decode()
            if not JOB_ID_PATTERN.fullmatch(job_id):
                raise ValueError("not a job id")  # RQ would read "a:b" as job "a" and never remove it
        except ValueError:
            self._quarantine(member, "member is not a job id")
            return
        try:
            job = self.job_class.fetch(job_id, connection=self.connection)
        except NoSuchJobError:
            self.cancel(job_id)
            return
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            raise
        except Exception as error:  # a key that is no hash, say
            self._quarantine(member, f"unloadable job ({type(error).__name__}: {shown(str(error))})")
            return
        if (reason := job_refusal(job)) is not None:
            self._quarantine(member, reason)
            return
        try:
            self.enqueue_job(job)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            raise
        except Exception as error:  # rq-scheduler's own fields (meta repeat, interval, cron_string)
            self._quarantine(member, f"rq-scheduler could not enqueue it ({type(error).__name__}: {shown(str(error))})")

    def _quarantine(self, member: bytes, reason: str) -> None:
        """Take an entry out of the scheduled set for good: one log line and a quarantine record."""
        logger.warning("scheduler quarantined entry %s: %s", shown(member), reason)
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.zrem(self.scheduled_jobs_key, member)
            quarantine_record(member, "scheduler", reason, pipeline=pipe)
            pipe.execute()

    def _renew_lock(self) -> None:
        if self._lock_acquired:
            self.connection.expire(self.scheduler_lock_key, int(self._interval) + 10)
        self.heartbeat()
