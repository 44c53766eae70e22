"""`manage.py rqworker-pool`: several forking workers under one parent process.

rq's WorkerPool forks N workers and replaces any that dies; each worker is our
KordantWorker, which claims and records in its own long-lived process and forks a work
horse per job (jobs/runner.py). This subclass adds what the pool's parent alone can do:

- warm the job types up once, before forking the workers, so the loaded libraries live
  in pages every worker and every horse shares instead of one copy per worker;
- when a worker dies (killed, out of memory), record the runs it held as lost at once,
  with how it died, rather than leaving them `running` until the recovery pass notices;
- stop its workers, gracefully, if the pool itself is killed;
- run the workers as `manage.py rqworker` does: no rq built-in scheduler in each worker
  (`manage.py rqscheduler` runs ours), and no database connection shared across a fork.

Graceful shutdown needs nothing here: the pool relays SIGINT/SIGTERM to each worker,
which finishes the job in hand (rq ignores the same stop heard twice within a second,
as when Ctrl-C reaches the whole process group and the pool relays it too). A second
signal a second or more later is a forced stop, as with one worker.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterable

from django.db import connections
from redis import ConnectionPool
from rq.worker_pool import ForkProcess, WorkerData, WorkerPool

logger = logging.getLogger("jobs.pool")


class KordantWorkerPool(WorkerPool):
    def start(self, burst: bool = False, logging_level: str = "INFO"):
        from jobs.worker import warm_up_job_types

        warm_up_job_types(self._queue_names)
        # Nothing in the parent is open across the forks that follow.
        connections.close_all()
        super().start(burst=burst, logging_level=logging_level)

    def get_worker_process(self, name: str, burst: bool, _sleep: float = 0, logging_level: str = "INFO"):
        return ForkProcess(
            target=run_worker,
            args=(name, self._queue_names, self._connection_class, self._pool_class, self._pool_kwargs),
            kwargs={
                "pool_pid": os.getpid(),
                "burst": burst,
                "logging_level": logging_level,
                "worker_class": self.worker_class,
                "job_class": self.job_class,
                "queue_class": self.queue_class,
                "exception_handlers": self.exception_handlers,
                "_sleep": _sleep,
            },
            name=f"Worker {name} (WorkerPool {self.name})",
        )

    def handle_dead_worker(self, worker_data: WorkerData):
        super().handle_dead_worker(worker_data)
        code = worker_data.process.exitcode
        if code == 0:
            return  # it stopped on request or ended its burst, after the job in hand
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exited with {code}"
        if self.status != self.Status.STOPPED and not self._burst:
            how += "; the pool started a replacement"
        logger.warning("worker %s (pid %d) %s", worker_data.name, worker_data.pid, how)
        worker_lost(worker_data.name, how)


def worker_lost(name: str, how: str) -> None:
    """Record the runs a dead worker held as lost and drop its registration; the pool keeps going."""
    from jobs import dispatch
    from jobs.services import job_runs_mark_worker_lost

    try:
        lost = job_runs_mark_worker_lost(name, how=how)
        if lost:
            logger.warning("worker %s: run(s) %s recorded as lost", name, ", ".join(lost))
    except Exception:
        # The recovery pass finds them later (the worker's pid is gone); the pool must go on.
        logger.exception("could not record the runs of dead worker %s; the recovery pass will", name)
    finally:
        connections.close_all()  # a replacement forked next must not inherit this connection
    try:
        dispatch.worker_forget(name)
    except Exception as exc:  # Redis away: its key expires by itself
        logger.warning("could not remove dead worker %s from Redis: %s", name, exc)


def run_worker(
    worker_name: str,
    queue_names: Iterable[str],
    connection_class,
    connection_pool_class,
    connection_pool_kwargs: dict,
    *,
    worker_class,
    job_class,
    queue_class,
    exception_handlers=None,
    pool_pid: int,
    burst: bool = True,
    logging_level: str = "INFO",
    _sleep: float = 0,
):
    """One worker of the pool, in its forked process: rq's run_worker, as `manage.py rqworker` runs it."""
    from jobs.worker import end_with_parent, set_aside_inherited_db_connections

    # A pool killed outright (kill -9, out of memory) leaves no one to replace or stop its
    # workers: each is told to stop as by SIGTERM, finishing the job in hand.
    end_with_parent(pool_pid, signal.SIGTERM)
    set_aside_inherited_db_connections()
    connection = connection_class(
        connection_pool=ConnectionPool(connection_class=connection_pool_class, **connection_pool_kwargs)
    )
    queues = [queue_class(name, connection=connection) for name in queue_names]
    worker = worker_class(
        queues,
        name=worker_name,
        connection=connection,
        job_class=job_class,
        queue_class=queue_class,
        exception_handlers=exception_handlers,
    )
    worker.log.info("Worker %s started with PID %s in pool process %s", worker_name, os.getpid(), os.getppid())
    time.sleep(_sleep)
    # Not rq's built-in scheduler: `manage.py rqscheduler` runs Kordant's, as for `rqworker`.
    worker.work(burst=burst, with_scheduler=False, logging_level=logging_level)
