"""Reads for the admin, the API and monitoring: what the job system is doing right now."""

from __future__ import annotations

import time
from datetime import timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from jobs import dispatch
from jobs.models import JobRun
from jobs.registry import QUEUES
from jobs.scheduling import HEARTBEAT_KEY

Status = JobRun.Status


def job_run_counts_by_status(*, since: timedelta | None = None) -> dict[str, int]:
    """Runs per status (every status present, zero if none), optionally created within `since`."""
    runs = JobRun.objects.all()
    if since is not None:
        runs = runs.filter(created_at__gte=timezone.now() - since)
    counts = dict(runs.order_by().values_list("status").annotate(n=Count("pk")))
    return {status: counts.get(status, 0) for status in Status.values}


def job_run_counts_by_type(*, since: timedelta | None = None) -> dict[str, dict[str, int]]:
    """Runs per job type and status."""
    runs = JobRun.objects.all()
    if since is not None:
        runs = runs.filter(created_at__gte=timezone.now() - since)
    result: dict[str, dict[str, int]] = {}
    for job_type, status, n in runs.order_by().values_list("job_type", "status").annotate(n=Count("pk")):
        result.setdefault(job_type, {})[status] = n
    return result


def job_run_failure_rate(*, window: timedelta = timedelta(hours=1)) -> dict[str, float]:
    """Share of runs that finished failed within the window, per job type and overall ("*")."""
    finished = JobRun.objects.filter(
        finished_at__gte=timezone.now() - window, status__in=(Status.COMPLETED, Status.FAILED)
    )
    rows = (
        finished.order_by()
        .values("job_type")
        .annotate(total=Count("pk"), failed=Count("pk", filter=Q(status=Status.FAILED)))
    )
    rates = {row["job_type"]: row["failed"] / row["total"] for row in rows}
    total = sum(row["total"] for row in rows)
    rates["*"] = sum(row["failed"] for row in rows) / total if total else 0.0
    return rates


def queue_depths(*, connection=None) -> dict[str, int]:
    """Jobs waiting in each RQ queue now, plus runs waiting for a later time ("delayed")."""
    connection = connection or dispatch.redis_connection()
    pipe = connection.pipeline(transaction=False)
    for name in QUEUES:
        pipe.llen(f"rq:queue:{name}")
    pipe.zcard(dispatch.DELAYED_KEY)
    *depths, delayed = pipe.execute()
    return {**dict(zip(QUEUES, depths, strict=True)), "delayed": delayed}


def oldest_queued_age() -> timedelta | None:
    """How long the oldest due, queued run has waited; None if nothing waits."""
    now = timezone.now()
    oldest = (
        JobRun.objects.filter(status=Status.QUEUED)
        .filter(Q(scheduled_for__isnull=True) | Q(scheduled_for__lte=now))
        .aggregate(oldest=Min("enqueued_at"))["oldest"]
    )
    return now - oldest if oldest else None


def scheduler_heartbeat(*, connection=None) -> dict | None:
    """The scheduler's last heartbeat (age in seconds, its name, last pass), or None if none is live."""
    beat = (connection or dispatch.redis_connection()).hgetall(HEARTBEAT_KEY)
    if not beat:
        return None
    return {
        "age_seconds": max(0.0, time.time() - float(beat[b"at"])),
        "name": beat[b"name"].decode(),
        "last_pass_seconds": float(beat[b"last_pass_seconds"]),
        "fired": int(beat[b"fired"]),
    }
