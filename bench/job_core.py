"""Job core against plain RQ doing the same no-op work, in the same run.

1. End to end: N no-op jobs through `manage.py rqworker --burst`, with RQ's
   SimpleWorker and forking Worker; plain RQ jobs vs Kordant runs (enqueue through
   a completed JobRun row). Wall time includes each worker's start, for both.
2. enqueue_many of 10,000: Kordant rows + Redis vs plain Queue.enqueue_many in a pipeline.
3. Two forking worker processes vs one, on the same Kordant runs, beside plain RQ's
   own scaling on the same machine.
"""

import os
import subprocess
import sys
import time

from bench.__main__ import ROOT

QUEUES = ["default"]


def _worker(
    worker_class: str,
    count: int = 1,
    extra_args: tuple[str, ...] = (),
    queues: list[str] = QUEUES,
    env: dict[str, str] | None = None,
) -> float:
    """Start `count` burst workers on `queues` (default: "default") and wait until all exit; return wall seconds."""
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", *queues, "--burst", "--worker-class", worker_class, *extra_args],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "WARNING", **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    for process in processes:
        if process.wait() != 0:
            raise RuntimeError(f"worker exited with {process.returncode}")
    return time.perf_counter() - started


def _plain_rq(n: int, worker_class: str, workers: int = 1) -> float:
    from rq import Queue

    from jobs.dispatch import redis_connection

    connection = redis_connection()
    connection.flushdb()
    queue = Queue("default", connection=connection)  # plain: pickle, stock Job class
    started = time.perf_counter()
    with connection.pipeline() as pipe:
        queue.enqueue_many([Queue.prepare_data("bench.noop.noop", args=(i,)) for i in range(n)], pipeline=pipe)
        pipe.execute()
    # The stock job class too: settings.RQ's JSON one cannot read pickled jobs, and every
    # job would fail instead of running.
    elapsed = time.perf_counter() - started + _worker(worker_class, workers, extra_args=("--job-class", "rq.job.Job"))
    _check_plain_jobs_ran(queue, n)
    return n / elapsed


def _check_plain_jobs_ran(queue, n: int) -> None:
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    finished, failed = FinishedJobRegistry(queue=queue).count, FailedJobRegistry(queue=queue).count
    if finished != n:
        raise RuntimeError(f"plain RQ finished {finished} of {n} jobs ({failed} failed)")


def _kordant(n: int, worker_class: str, workers: int = 1) -> float:
    from jobs import EnqueueRequest, enqueue_many
    from jobs.dispatch import redis_connection
    from jobs.models import JobEvent, JobRun

    redis_connection().flushdb()
    JobEvent.objects.all().delete()
    JobRun.objects.all().delete()
    started = time.perf_counter()
    enqueue_many([EnqueueRequest("jobs.ping", {"message": str(i)}) for i in range(n)])
    elapsed = time.perf_counter() - started + _worker(worker_class, workers)
    done = JobRun.objects.filter(status="completed").count()
    if done != n:
        raise RuntimeError(f"only {done} of {n} runs completed")
    return n / elapsed


def _enqueue_many(n: int) -> tuple[float, float]:
    from rq import Queue

    from jobs import EnqueueRequest, enqueue_many
    from jobs.dispatch import get_queue, redis_connection
    from jobs.models import JobEvent, JobRun

    connection = redis_connection()
    connection.flushdb()
    queue = get_queue("default")
    started = time.perf_counter()
    with connection.pipeline() as pipe:
        queue.enqueue_many([Queue.prepare_data("bench.noop.noop", args=(i,)) for i in range(n)], pipeline=pipe)
        pipe.execute()
    plain = n / (time.perf_counter() - started)

    connection.flushdb()
    JobEvent.objects.all().delete()
    JobRun.objects.all().delete()
    started = time.perf_counter()
    enqueue_many([EnqueueRequest("jobs.ping", {"message": str(i)}) for i in range(n)])
    ours = n / (time.perf_counter() - started)
    assert connection.llen("rq:queue:default") == n
    return plain, ours


def main() -> None:
    for label, plain_class, our_class, n in [
        ("SimpleWorker", "rq.SimpleWorker", "jobs.worker.KordantSimpleWorker", 2000),
        ("forking Worker", "rq.Worker", "jobs.worker.KordantWorker", 400),
    ]:
        plain = _plain_rq(n, plain_class)
        ours = _kordant(n, our_class)
        print(
            f"end to end, {label:14} ({n} no-op jobs): plain RQ {plain:7.1f} jobs/s   "
            f"Kordant {ours:7.1f} jobs/s   ratio {ours / plain:.2f}x (target >= 0.8x)",
            flush=True,
        )

    plain, ours = _enqueue_many(10_000)
    print(
        f"enqueue_many 10,000: plain RQ pipeline {plain:8.0f} jobs/s   Kordant rows+Redis {ours:8.0f} jobs/s   "
        f"ratio {ours / plain:.2f}x (target >= 0.5x)",
        flush=True,
    )

    # Enough runs that each worker's start (a second of imports) does not dominate.
    n = 1600
    one = _kordant(n, "jobs.worker.KordantWorker", workers=1)
    two = _kordant(n, "jobs.worker.KordantWorker", workers=2)
    # Plain RQ's own scaling on the same machine: on two cores shared with PostgreSQL and
    # Redis, a CPU-bound no-op job cannot double however the worker is written.
    plain_one = _plain_rq(n, "rq.Worker")
    plain_two = _plain_rq(n, "rq.Worker", workers=2)
    print(
        f"forking workers ({n} runs): one {one:.1f} jobs/s   two {two:.1f} jobs/s   "
        f"scaling {two / one:.2f}x (target >= 1.7x; plain RQ here: {plain_one:.1f} -> {plain_two:.1f} jobs/s, "
        f"{plain_two / plain_one:.2f}x)",
        flush=True,
    )
