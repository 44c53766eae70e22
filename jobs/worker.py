"""RQ classes for Kordant: JSON on the wire, and the JobRun kept true when RQ sees a failure.

Set in settings.RQ, so plain `manage.py rqworker critical high default low` uses them.
"""

import ctypes
import gc
import logging
import os
import signal
import tempfile
import time
from collections.abc import Iterable

import redis
from django.db import close_old_connections, connections
from redis.driver_info import DriverInfo
from rq import SimpleWorker, Worker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import NoSuchJobError, StopRequested
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer
from rq.utils import now, utcformat
from rq.worker import DequeueStrategy

from jobs.dispatch import RQ_FAILURE_TTL
from jobs.entrypoints import job_refusal, quarantine_record, shown
from jobs.outage import REDIS_DOWN, RedisOutage

logger = logging.getLogger("jobs.worker")

# A heartbeat only pushes the worker key's expiry (minutes away) further; RQ sends up to
# three per job, so one within this many seconds of the last is skipped.
HEARTBEAT_EVERY = 1.0
# A worker re-reads the paused queues at most this often, and never blocks waiting for a
# job longer than this, so a pause or a resume takes effect within about a second.
PAUSE_POLL_SECONDS = 1
# Listened to when every queue of a worker is paused: nothing is ever pushed to it.
_NOTHING_QUEUE = "kordant-all-paused"


class JobRefused(Exception):
    """A job read from Redis asks for something the project does not run (jobs.entrypoints)."""


class JSONJob(Job):
    """An RQ job whose data is JSON, never pickle: writing to Redis must not mean running code.

    JSON alone is not enough: the data names the function to call, and RQ would import
    whatever it names, and the callbacks the hash names too. So this class, which every
    path loads jobs through (worker, work horse, scheduler, django-rq's pages), resolves
    only the entry points in jobs.entrypoints and refuses anything else without importing it.
    """

    # Why RQ could not read this job's hash, when it could not (see restore).
    _unreadable: str | None = None

    def __init__(self, id=None, connection=None, serializer=None):
        super().__init__(id, connection)
        # Set after, not passed in: rq checks a passed serializer against a typing.Protocol,
        # which costs more than the rest of building a job.
        self.serializer = JSONSerializer

    def restore(self, raw_data):
        # A hash written by hand may hold a field RQ cannot parse (a status it does not know,
        # a date that is not one). RQ raises, and a worker meeting that while dequeuing exits:
        # one bad hash would stop every worker. Kept as a reason to refuse the job instead.
        try:
            super().restore(raw_data)
        except NoSuchJobError:
            raise
        except Exception as error:
            self._unreadable = f"{type(error).__name__}: {shown(str(error))}"

    @property
    def func(self):
        if (reason := job_refusal(self)) is not None:
            raise JobRefused(reason)
        return super().func

    # The project uses no callbacks: a hash naming one is refused, and the name never imported.

    @property
    def success_callback(self):
        return self._no_callback(self._success_callback_name)

    @property
    def failure_callback(self):
        return self._no_callback(self._failure_callback_name)

    @property
    def stopped_callback(self):
        return self._no_callback(self._stopped_callback_name)

    @staticmethod
    def _no_callback(name):
        if name:
            raise JobRefused(f"job names a callback {shown(name)}")
        return None

    def delete(self, pipeline=None, remove_from_queue=True, delete_dependents=False):
        # RQ deletes a finished job (RQ_RESULT_TTL is 0) only after reading its status and
        # its executions back from Redis, seven round trips, to learn what to remove. The
        # worker that has just run it knows: it was started, and its one execution is
        # removed by cleanup_execution in the same pipeline. So that worker deletes the
        # keys directly; any other caller, or an unusual job, takes RQ's way.
        execution = self.__dict__.pop("_finished_execution", None)
        if (
            execution is None
            or pipeline is None
            or remove_from_queue
            or delete_dependents
            or self.group_id
            or self.has_rate_limit
        ):
            return super().delete(
                pipeline=pipeline, remove_from_queue=remove_from_queue, delete_dependents=delete_dependents
            )
        pipeline.delete(
            self.key, self.dependents_key, self.dependencies_key, Result.get_key(self.id), self.execution_registry.key
        )
        return None


class RedisUnavailable(Exception):
    """Redis did not answer the worker: an outage to wait out (see KordantWorkerMixin.work)."""


class KordantWorkerMixin:
    _paused_read_at = float("-inf")
    _paused: frozenset[str] = frozenset()
    _registered_once = False

    def __init__(self, *args, serializer=None, job_class=None, log_job_description=None, **kwargs):
        # The rqworker command passes pickle's serializer by default; Kordant refuses it.
        # RQ logs each job's description as it dequeues it, before any check: ours is only
        # "run <id>", and one written by hand could be megabytes, so the id alone is logged.
        super().__init__(*args, serializer=JSONSerializer, job_class=JSONJob, log_job_description=False, **kwargs)
        # Import the runner once here, not in every forked work horse.
        import jobs.runner  # noqa: F401

        self._last_heartbeat_sent = 0.0

    # Queue pausing (jobs.services.queue_pause): RQ dequeues from `_ordered_queues`, read
    # afresh on every pass of its dequeue loop, so leaving paused queues out of it is all
    # it takes; the jobs stay in their lists untouched.

    @property
    def _ordered_queues(self):
        paused = self._paused_queue_names()
        if not paused:
            return self._all_ordered_queues
        listening = [queue for queue in self._all_ordered_queues if queue.name not in paused]
        if not listening:
            listening = [self.queue_class(_NOTHING_QUEUE, connection=self.connection, serializer=self.serializer)]
        return listening

    @_ordered_queues.setter
    def _ordered_queues(self, queues):
        # RQ's round-robin and random strategies reorder the list; paused queues keep their place.
        current = getattr(self, "_all_ordered_queues", None)
        if current is not None:
            names = {queue.name for queue in queues}
            queues = list(queues) + [queue for queue in current if queue.name not in names]
        self._all_ordered_queues = [queue for queue in queues if queue.name != _NOTHING_QUEUE]

    def _paused_queue_names(self) -> frozenset[str]:
        now = time.monotonic()
        if now - self._paused_read_at >= PAUSE_POLL_SECONDS:
            from jobs.dispatch import PAUSED_QUEUES_KEY

            self._paused = frozenset(name.decode() for name in self.connection.smembers(PAUSED_QUEUES_KEY))
            self._paused_read_at = now
        return self._paused

    # --- riding out a Redis outage -------------------------------------------------------
    #
    # rq's Worker.work ends the worker on the first Redis error outside its dequeue wait
    # (a heartbeat, a state change, bookkeeping after a job), and inside that wait it
    # logs every retry and backs off up to a minute. This is rq's loop with one change:
    # a Redis connection error anywhere in it is an outage (jobs.outage.RedisOutage):
    # logged once, waited out with a back-off of at most 5 s, and the loop resumes by
    # itself. Nothing is lost meanwhile: runs live in the database, a claimed run whose
    # attempt could not finish is retried, and the recovery pass re-queues what Redis lost.

    def work(
        self,
        burst=False,
        logging_level=None,
        date_format=DEFAULT_LOGGING_DATE_FORMAT,
        log_format=DEFAULT_LOGGING_FORMAT,
        max_jobs=None,
        max_idle_time=None,
        with_scheduler=False,
        dequeue_strategy=DequeueStrategy.DEFAULT,
    ):
        self._outage = RedisOutage(logger, f"worker {self.name}")
        self._install_signal_handlers()
        completed_jobs = 0
        try:
            while not self._bootstrapped(logging_level, date_format, log_format):
                time.sleep(self._outage.wait)
            self._dequeue_strategy = dequeue_strategy
            if with_scheduler:
                self._start_scheduler(burst, logging_level, date_format, log_format)
            while True:
                try:
                    try:
                        self.check_for_suspension(burst)
                        if self.should_run_maintenance_tasks:
                            self.run_maintenance_tasks()
                        if self._stop_requested:
                            self.log.info("Worker %s: stopping on request", self.name)
                            break
                        timeout = None if burst else self.dequeue_timeout
                        result = self.dequeue_job_and_maintain_ttl(timeout, max_idle_time)
                        self._outage.succeeded()
                        if result is None:
                            if burst:
                                self.log.info("Worker %s: done, quitting", self.name)
                            elif max_idle_time is not None:
                                self.log.info("Worker %s: idle for %d seconds, quitting", self.name, max_idle_time)
                            break
                        job, queue = result
                        self.execute_job(job, queue)
                        self.heartbeat()
                        completed_jobs += 1
                        if max_jobs is not None and completed_jobs >= max_jobs:
                            self.log.info("Worker %s: finished executing %d jobs, quitting", self.name, completed_jobs)
                            break
                    except (*REDIS_DOWN, RedisUnavailable) as exc:
                        # A stop signal during this wait raises StopRequested, handled below.
                        time.sleep(self._outage.failed(exc.__cause__ or exc))
                except StopRequested:
                    break
                except SystemExit:
                    raise
                except Exception:
                    self.log.error("Worker %s: found an unhandled exception, quitting...", self.name, exc_info=True)
                    break
        except StopRequested:
            pass
        finally:
            try:
                self.teardown()
            except REDIS_DOWN as exc:
                logger.warning("worker %s: could not register its exit, Redis unavailable (%s)", self.name, exc)
        return bool(completed_jobs)

    def _bootstrapped(self, logging_level, date_format, log_format) -> bool:
        try:
            self.bootstrap(logging_level, date_format, log_format)
        except REDIS_DOWN as exc:
            self._outage.failed(exc)
            return False
        self._outage.succeeded()
        return True

    def register_birth(self):
        # Again after Redis lost this worker's key (a flush, a restart without data) or after
        # a start-up that failed halfway: a key under this worker's name is then its own.
        if self._registered_once:
            self.connection.delete(self.key)
        super().register_birth()
        self._registered_once = True

    def maintain_heartbeats(self, job, execution):
        # While a work horse runs: a missed heartbeat is harmless, ending the worker is not.
        try:
            super().maintain_heartbeats(job, execution)
        except REDIS_DOWN as exc:
            self._outage.failed(exc)

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        # RQ blocks for minutes on the queues it had when it began waiting; waking every
        # second lets it see a queue resumed (or paused) meanwhile.
        if timeout is not None:
            timeout = min(timeout, PAUSE_POLL_SECONDS)
        # Every job is checked here, in the long-lived parent, before anything claims, forks
        # or runs it: a refused job is failed and the worker takes the next one.
        while True:
            try:
                result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except REDIS_DOWN:
                raise
            except Exception as error:
                # RQ could not even load the job (an id it refuses, a key that is no hash);
                # unhandled, this ends the worker. RQ tags the error with the job and queue.
                job_id, queue = getattr(error, "job_id", None), getattr(error, "queue", None)
                if job_id is None or queue is None:
                    raise
                self._refuse(job_id, queue, f"unloadable job ({type(error).__name__}: {shown(str(error))})")
                continue
            if result is None:
                return None
            job, queue = result
            reason = job_refusal(job, queue_name=queue.name)
            if reason is None:
                return result
            self._refuse(job.id, queue, reason, loaded=True)

    def _refuse(self, job_id: str, queue, reason: str, *, loaded: bool = False) -> None:
        """Fail a job this worker must not run: one log line, the failed registry, the quarantine."""
        logger.error("refused job %s from queue %s: %s", shown(job_id), queue.name, reason)
        with self.connection.pipeline() as pipe:
            pipe.lrem(queue.intermediate_queue_key, 0, job_id)  # where RQ parks a job it dequeued
            if loaded:
                # Only what marks it failed: RQ's own bookkeeping would save the hostile hash whole.
                key = Job.key_for(job_id)
                pipe.hset(key, mapping={"status": "failed", "ended_at": utcformat(now()), "exc_info": reason})
                pipe.expire(key, RQ_FAILURE_TTL)
                pipe.zadd(queue.failed_job_registry.key, {job_id: time.time() + RQ_FAILURE_TTL})
            quarantine_record(job_id, "worker", reason, pipeline=pipe)
            try:
                pipe.execute()
            except redis.exceptions.ResponseError:
                logger.exception("could not fail refused job %s", shown(job_id))

    # RQ's own bookkeeping, in fewer Redis round trips: each one costs about as much as a
    # no-op job's database write, and RQ makes about twenty per job.

    def heartbeat(self, timeout=None, pipeline=None):
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline=pipeline)
        if timeout is None and time.monotonic() - self._last_heartbeat_sent < HEARTBEAT_EVERY:
            return None
        # RQ sends its three commands one by one; one pipeline sends them together.
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.hexists(self.key, "birth")
                super().heartbeat(timeout, pipeline=pipe)
                registered = pipe.execute()[0]
        except REDIS_DOWN as exc:
            # Not a ConnectionError, so that it leaves RQ's dequeue wait (which would log
            # and retry on its own) for the outage handling in `work`.
            raise RedisUnavailable(str(exc)) from exc
        self._last_heartbeat_sent = time.monotonic()
        if not registered:
            # Redis lost this worker's key: without it the recovery pass takes the worker for
            # dead and fails its running jobs.
            logger.warning("worker %s: its registration was gone from Redis; registering again", self.name)
            self.register_birth()
        return None

    def set_state(self, state, pipeline=None):
        # RQ sets "idle" after each job and again before waiting for the next.
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline=pipeline)

    def handle_job_success(self, job, queue, started_job_registry, execution):
        job._finished_execution = execution  # see JSONJob.delete
        super().handle_job_success(job, queue, started_job_registry, execution)

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string="", execution=None):
        # RQ only sees a failure when our runner could not record one itself: the work
        # horse was killed, stopped on request, or overran its hard timeout.
        super().handle_job_failure(
            job, queue, started_job_registry=started_job_registry, exc_string=exc_string, execution=execution
        )
        from jobs.services import job_run_mark_lost

        # The attempt the parent claimed, when it claimed one: a later attempt is not this failure's.
        handoff = getattr(self, "_handoff", None)
        attempt = handoff.run.attempt if handoff is not None and handoff.run is not None else None
        try:
            job_run_mark_lost(job.id, reason=exc_string.strip() or "work horse ended unexpectedly", attempt=attempt)
        except Exception:
            # The recovery pass repairs it later; the worker itself must keep going.
            logger.exception("could not record the failure of run %s", job.id)
        finally:
            close_old_connections()


class KordantWorker(KordantWorkerMixin, Worker):
    """The forking worker used in production.

    Opening a database connection costs more than a short job, and a work horse lives
    for one job only. So this long-lived parent claims each run before it forks and
    records the outcome after the horse exits, on the one connection it keeps; the
    horse only runs the handler (jobs/runner.py, `Handoff`).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Where each work horse reports its outcome; truncated before every job, and open
        # as long as the worker lives (the operating system removes it at exit).
        self._outbox = tempfile.TemporaryFile()  # noqa: SIM115
        self._handoff = None
        self._warm = False
        self._pid = os.getpid()
        # Each work horse opens its own Redis connection, and redis-py reads its own
        # version from the installed package's metadata for every new connection (half a
        # millisecond); read it once here instead.
        self.connection.connection_pool.connection_kwargs.setdefault("driver_info", DriverInfo())

    def execute_job(self, job, queue):
        if not self._warm:
            self._warm = True
            warm_up_job_types(self.queue_names())
        self._handoff = self._hand_off(job)
        try:
            super().execute_job(job, queue)
        finally:
            handoff, self._handoff = self._handoff, None
            if handoff is not None:
                handoff.finish()

    def _hand_off(self, job):
        from jobs import runner
        from jobs.dispatch import RUNNER

        try:
            is_run = job.func_name == RUNNER and len(job.args) == 1 and not job.kwargs
        except Exception:  # undecodable job data: let the horse fail it the way RQ does
            return None
        return runner.hand_off(job.args[0], self.name, self._outbox) if is_run else None

    def main_work_horse(self, job, queue):
        # A horse reports to its worker, which records the outcome. Once the worker is dead
        # (kill -9, out of memory) the report goes nowhere, and the run is retried as lost:
        # a horse left running would run beside that retry. So it ends with its worker.
        end_with_parent(self._pid)
        set_aside_inherited_db_connections()
        super().main_work_horse(job, queue)

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string="", execution=None):
        # The horse may have reported its outcome before it was killed: that outcome stands.
        if self._handoff is not None:
            self._handoff.settle()
        super().handle_job_failure(
            job, queue, started_job_registry=started_job_registry, exc_string=exc_string, execution=execution
        )


# The process whose warm-up this process inherits or ran itself (see warm_up_job_types).
_warmed_in_pid: int | None = None


def warm_up_job_types(queue_names: Iterable[str]) -> None:
    """Load what the job types of these queues need, once, in a process that forks workers or horses.

    A process forked after this (a pool's worker, a work horse) shares those pages and does
    not load them again.
    """
    global _warmed_in_pid
    if _warmed_in_pid is None:
        _warmed_in_pid = os.getpid()
        from jobs.registry import registry

        served = set(queue_names)
        for job_type in registry.all():
            if job_type.warm_up is None or job_type.queue not in served:
                continue
            try:
                job_type.warm_up()
            except Exception:  # a horse that needs it loads it itself; the worker keeps going
                logger.exception("warming up %s failed; its jobs will load what they need themselves", job_type.name)
    # What this process has loaded by now lives as long as it does. Left to the collector,
    # a collection in a forked child would write to every one of those objects and make
    # the kernel copy their pages for that child. Done in every process that forks, since
    # each holds objects of its own (a pool's worker: its Redis client, its queues).
    gc.collect()
    gc.freeze()


_PR_SET_PDEATHSIG = 1


def end_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """In a forked child: receive `sig` when the process that forked it dies (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent_pid:  # the parent died before the request was in place
        os.kill(os.getpid(), sig)


# Keeps the parent's connection objects alive in a work horse: see below.
_inherited_db_connections = []


def set_aside_inherited_db_connections() -> None:
    """In a forked child (a work horse, an import's writer): make Django open a connection of its own.

    The parent's connection must not be used here, nor closed: closing sends PostgreSQL a
    Terminate on the socket both processes share, which would end the parent's session.
    Holding a reference means it is never finalised either; the child leaves by os._exit,
    which runs no finalisers.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _inherited_db_connections.append(connection.connection)
            connection.connection = None


class KordantSimpleWorker(KordantWorkerMixin, SimpleWorker):
    """Runs jobs in the worker process itself: tests, benchmarks, and platforms without fork."""
