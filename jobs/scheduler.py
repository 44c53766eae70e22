"""KordantScheduler: the rq-scheduler subclass that `manage.py rqscheduler` runs (settings.RQ).

At start, every hour, and as soon as it finds Redis has lost entries (a flush, a restart
without data, fewer entries than enabled schedules), it rebuilds every schedule entry from
the database. A Redis outage ends nothing: each step of the loop, rq-scheduler's own
included, runs through `_step`, and the scheduler resumes when Redis answers. Each pass, under
rq-scheduler's lock, it fires due schedule entries in bulk (jobs/scheduling.py): tier
schedules and periodic jobs, the built-in ones included, alike; it hands any other
rq-scheduler job to the stock path, moves due delayed runs (delay/at, retries) to their
queues, copies finished runs' outcomes onto their schedules, runs the recovery pass once a
minute and writes a heartbeat. Long passes renew the lock batch by batch, so a burst of 100,000 due
schedules cannot let a second scheduler in halfway.

While an operator has paused all scheduling (SchedulingSwitch, one query a pass), a pass
fires nothing: entries stay where they are, due ones wait, and the heartbeat says "paused".
Delayed runs still move (retries and delayed manual runs are runs already made, not
ticks), and so do manual runs. On resume each due schedule fires under its catch-up policy.
"""

import logging
import time
from datetime import timedelta

from django.db import close_old_connections
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import JOB_ID_PATTERN
from rq_scheduler import Scheduler

from jobs import entries
from jobs.entrypoints import job_refusal, quarantine_record, shown
from jobs.outage import REDIS_DOWN, RedisOutage
from jobs.scheduling import (
    FireReport,
    SyncReport,
    scheduler_heartbeat_write,
    schedules_fire,
    schedules_record_outcomes,
    schedules_sync_all,
    schedules_with_entries,
)
from jobs.selectors import scheduling_paused
from jobs.services import delayed_runs_push_due, job_runs_recover, limits_promote_waiting
from jobs.worker import JSONJob

logger = logging.getLogger("jobs.scheduler")


class KordantScheduler(Scheduler):
    # rqscheduler's default --interval is 60 s; due runs must start within a couple of seconds.
    poll_seconds = 1.0
    recovery_every = 60.0
    # Entries a signal could not write (Redis away at that moment) come back within this.
    resync_every = 3600.0
    fire_batch = 2000
    # Entries lost in part (fewer in Redis than rows that want one) must be seen on this many
    # passes running before a rebuild: a row committed a moment before its entry is written
    # is not a loss.
    short_passes_before_rebuild = 2
    # How long a count of the rows that want entries is trusted; a shortfall recounts at once.
    expected_count_seconds = 10.0
    # A start-up sync or rebuild that failed (not for want of Redis) is tried again after this.
    rebuild_retry_seconds = 30.0

    def __init__(self, *args, interval=60, job_class=None, **kwargs):
        # Whatever the caller passes, jobs are loaded through the class that refuses foreign ones.
        super().__init__(*args, interval=min(interval, self.poll_seconds), job_class=JSONJob, **kwargs)
        self._last_recovery = 0.0
        self._last_resync = time.monotonic()
        self._outage = RedisOutage(logger, "scheduler")
        self._redis_down = False  # this pass met a Redis connection error: the rest of it waits
        self._born = False
        self._synced_at_start = False
        self._rebuild_not_before = 0.0
        self._short_passes = 0
        self._expected: tuple[float, int] | None = None  # (when counted, rows wanting entries)

    # --- the loop ----------------------------------------------------------------------
    #
    # rq-scheduler's Scheduler.run, rewritten so that every step of it goes through
    # `_step`, including the library's own calls (birth, heartbeat, lock): there, one
    # Redis error ended the process. Now a Redis outage is logged once, each pass waits a
    # little longer (up to 5 s) and the scheduler resumes by itself when Redis answers.

    def run(self, burst=False):
        self._install_signal_handlers()
        try:
            while True:
                started = time.monotonic()
                locked = self._pass()
                if burst and locked:
                    logger.info("scheduler: burst pass done, quitting")
                    break
                if self._outage.down:
                    time.sleep(self._outage.wait)
                else:
                    time.sleep(max(0.0, self._interval - (time.monotonic() - started)))
        finally:
            self.remove_lock()
            self.register_death()

    def _pass(self) -> bool:
        """One pass: register, keep entries whole, heartbeat, and under the lock fire and the rest.

        Returns whether the pass ran under the lock.
        """
        self._redis_down = False
        close_old_connections()
        if not self._born:
            self._born = bool(self._step("registering the scheduler", self._register_birth))
        if self._born:
            self._step("keeping entries whole", self.keep_entries_whole)
            self._step("heartbeat", self.heartbeat)
        locked = bool(self._born and self._step("taking the lock", self.acquire_lock))
        if locked:
            self.enqueue_jobs()
            self._step("heartbeat", self.heartbeat)
            self._step("releasing the lock", self.remove_lock)
        if not self._redis_down:
            self._outage.succeeded()
        close_old_connections()
        return locked

    def _register_birth(self) -> bool:
        self.register_birth()
        return True

    def heartbeat(self):
        # The scheduler's key is gone if Redis was flushed or restarted: register again.
        if not self.connection.expire(self.key, int(self._interval) + 10):
            self.register_birth()

    def remove_lock(self):
        # Also called from the signal handler and on the way out, outside any guard.
        try:
            super().remove_lock()
        except REDIS_DOWN as exc:
            self._lock_acquired = False  # it expires by itself
            logger.warning("scheduler: could not release the lock, Redis unavailable (%s); it expires by itself", exc)

    def register_death(self):
        try:
            super().register_death()
        except REDIS_DOWN as exc:
            logger.warning("scheduler: could not register its exit, Redis unavailable (%s)", exc)

    # --- entries ---------------------------------------------------------------------------

    def keep_entries_whole(self) -> None:
        """Rebuild every entry from the database at start, and whenever Redis has lost them."""
        if time.monotonic() < self._rebuild_not_before:
            return
        if not self._synced_at_start:
            self._guarded_resync("at start")
            self._synced_at_start = True
            return
        reason = None
        if not entries.entries_built(connection=self.connection):
            reason = "Redis lost them (flushed, or restarted without its data)"
        else:
            found, expected = entries.entry_count(connection=self.connection), self._expected_entries()
            if found < expected:
                # Recount before believing it: the cached count may be older than a deletion.
                expected = self._expected_entries(fresh=True)
            self._short_passes = self._short_passes + 1 if found < expected else 0
            if self._short_passes >= self.short_passes_before_rebuild:
                reason = f"{found} entries in Redis for {expected} enabled schedules"
        if reason:
            self._short_passes = 0
            report = self._guarded_resync("after a loss", log=False)
            logger.warning("schedule entries missing (%s): rebuilt from the database; %s", reason, report)
            entries.entries_rebuilt_record(reason, report.entries_written, connection=self.connection)

    def _guarded_resync(self, when: str, *, log: bool = True) -> SyncReport:
        # A sync that fails for another reason than Redis (a database error, a row it cannot
        # handle) is retried after a while, not every second: it reads every subscription.
        self._rebuild_not_before = time.monotonic() + self.rebuild_retry_seconds
        try:
            report = self._resync(when, log=log)
        except REDIS_DOWN:
            self._rebuild_not_before = 0.0  # retried as soon as Redis answers
            raise
        self._rebuild_not_before = 0.0
        return report

    def _expected_entries(self, *, fresh: bool = False) -> int:
        now = time.monotonic()
        if fresh or self._expected is None or now - self._expected[0] > self.expected_count_seconds:
            self._expected = (now, schedules_with_entries().count())
        return self._expected[1]

    def _resync(self, when: str, *, log: bool = True) -> SyncReport:
        self._last_resync = time.monotonic()
        self._expected = None
        report = schedules_sync_all()
        if log and report.changed:
            logger.warning("schedules synced %s: %s", when, report)
        return report

    def enqueue_jobs(self):
        started = time.monotonic()
        close_old_connections()
        # Unreadable (a database restart): treated as paused for this pass, which only
        # delays ticks by a pass, rather than firing through a switch an operator turned.
        paused = self._step("reading the scheduling switch", scheduling_paused)
        fired = FireReport()
        if paused is False:
            fired = self._step("firing schedules", self.fire_due) or FireReport()
        if fired.fired or fired.removed:
            logger.info("schedules fired: %s", fired)
        self._step("promoting runs waiting for a limit", limits_promote_waiting)
        moved = self._step("moving delayed runs", delayed_runs_push_due)
        if moved:
            logger.info("moved %d due run(s) to their queues", moved)
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
            paused=bool(paused),
            connection=self.connection,
        )
        close_old_connections()

    def _step(self, what: str, function, *args, **kwargs):
        # One failing step (a database restart, a bug) must not end the scheduler: it is
        # logged, the rest of the pass runs, and the next pass, a second later, retries.
        # Redis not answering is an outage, not a bug: logged once (RedisOutage), and the
        # rest of the pass is skipped, since every step needs Redis.
        if self._redis_down:
            return None
        try:
            return function(*args, **kwargs)
        except REDIS_DOWN as exc:
            self._redis_down = True
            self._outage.failed(exc)
            logger.debug("scheduler pass: %s failed, Redis unavailable", what, exc_info=True)
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
        except REDIS_DOWN:
            raise
        except Exception as error:  # a key that is no hash, say
            self._quarantine(member, f"unloadable job ({type(error).__name__}: {shown(str(error))})")
            return
        if (reason := job_refusal(job)) is not None:
            self._quarantine(member, reason)
            return
        try:
            self.enqueue_job(job)
        except REDIS_DOWN:
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
