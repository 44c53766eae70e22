"""RQ classes for Kordant: JSON on the wire, and the JobRun kept true when RQ sees a failure.

Set in settings.RQ, so plain `manage.py rqworker critical high default low` uses them.
"""

import logging

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
    """The forking worker used in production."""

    def fork_work_horse(self, job, queue):
        # A child must never share the parent's database socket.
        connections.close_all()
        super().fork_work_horse(job, queue)


class KordantSimpleWorker(KordantWorkerMixin, SimpleWorker):
    """Runs jobs in the worker process itself: tests, benchmarks, and platforms without fork."""
