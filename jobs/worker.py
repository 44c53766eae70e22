"""RQ classes for Kordant: JSON on the wire, and the JobRun kept true when RQ sees a failure.

Set in settings.RQ, so plain `manage.py rqworker critical high default low` uses them.
"""

import logging
import tempfile

from django.db import close_old_connections, connections
from rq import SimpleWorker, Worker
from rq.job import Job
from rq.serializers import JSONSerializer

logger = logging.getLogger("jobs.worker")


class JSONJob(Job):
    """An RQ job whose data is JSON, never pickle: writing to Redis must not mean running code."""

    def __init__(self, id=None, connection=None, serializer=None):
        super().__init__(id, connection)
        # Set after, not passed in: rq checks a passed serializer against a typing.Protocol,
        # which costs more than the rest of building a job.
        self.serializer = JSONSerializer


class KordantWorkerMixin:
    def __init__(self, *args, serializer=None, job_class=None, **kwargs):
        # The rqworker command passes pickle's serializer by default; Kordant refuses it.
        super().__init__(*args, serializer=JSONSerializer, job_class=JSONJob, **kwargs)
        # Import the runner once here, not in every forked work horse.
        import jobs.runner  # noqa: F401

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string="", execution=None):
        # RQ only sees a failure when our runner could not record one itself: the work
        # horse was killed, stopped on request, or overran its hard timeout.
        super().handle_job_failure(
            job, queue, started_job_registry=started_job_registry, exc_string=exc_string, execution=execution
        )
        from jobs.services import job_run_mark_lost

        try:
            job_run_mark_lost(job.id, reason=exc_string.strip() or "work horse ended unexpectedly")
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

    def execute_job(self, job, queue):
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
        _set_aside_inherited_db_connections()
        super().main_work_horse(job, queue)

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string="", execution=None):
        # The horse may have reported its outcome before it was killed: that outcome stands.
        if self._handoff is not None:
            self._handoff.settle()
        super().handle_job_failure(
            job, queue, started_job_registry=started_job_registry, exc_string=exc_string, execution=execution
        )


# Keeps the parent's connection objects alive in a work horse: see below.
_inherited_db_connections = []


def _set_aside_inherited_db_connections() -> None:
    """In a new work horse: make Django open a connection of its own if the handler needs one.

    The parent's connection must not be used here, nor closed: closing sends PostgreSQL a
    Terminate on the socket both processes share, which would end the parent's session.
    Holding a reference means it is never finalised either; a horse leaves by os._exit,
    which runs no finalisers.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _inherited_db_connections.append(connection.connection)
            connection.connection = None


class KordantSimpleWorker(KordantWorkerMixin, SimpleWorker):
    """Runs jobs in the worker process itself: tests, benchmarks, and platforms without fork."""
