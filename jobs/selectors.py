"""Reads for the admin, the API and monitoring: what the job system is doing right now."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from jobs import dispatch, entries
from jobs.entrypoints import quarantined
from jobs.models import SCHEDULE_STATE_FILTERS, JobRun, PeriodicJob, Schedule, SchedulingSwitch
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


def job_run_failure_counts(*, window: timedelta = timedelta(hours=1)) -> tuple[int, int]:
    """(failed, finished) runs that finished, completed or failed, within the window."""
    counts = JobRun.objects.filter(
        finished_at__gte=timezone.now() - window, status__in=(Status.COMPLETED, Status.FAILED)
    ).aggregate(total=Count("pk"), failed=Count("pk", filter=Q(status=Status.FAILED)))
    return counts["failed"], counts["total"]


def queue_depths(*, connection=None) -> dict[str, int]:
    """Jobs waiting in each RQ queue now, plus runs waiting for a later time ("delayed")."""
    connection = connection or dispatch.redis_connection()
    pipe = connection.pipeline(transaction=False)
    for name in QUEUES:
        pipe.llen(f"rq:queue:{name}")
    pipe.zcard(dispatch.DELAYED_KEY)
    *depths, delayed = pipe.execute()
    return {**dict(zip(QUEUES, depths, strict=True)), "delayed": delayed}


def oldest_queued_age(*, exclude_queues=()) -> timedelta | None:
    """How long the oldest due, queued run has waited (outside `exclude_queues`); None if nothing waits."""
    now = timezone.now()
    oldest = (
        JobRun.objects.filter(status=Status.QUEUED)
        .filter(Q(scheduled_for__isnull=True) | Q(scheduled_for__lte=now))
        .exclude(queue__in=list(exclude_queues))
        .aggregate(oldest=Min("enqueued_at"))["oldest"]
    )
    return now - oldest if oldest else None


def scheduler_heartbeat(*, connection=None) -> dict | None:
    """The scheduler's last heartbeat (age in seconds, its name, last pass, whether it found
    scheduling paused), or None if none is live."""
    beat = (connection or dispatch.redis_connection()).hgetall(HEARTBEAT_KEY)
    if not beat:
        return None
    return {
        "age_seconds": max(0.0, time.time() - float(beat[b"at"])),
        "name": beat[b"name"].decode(),
        "last_pass_seconds": float(beat[b"last_pass_seconds"]),
        "fired": int(beat[b"fired"]),
        # Whether its last pass found scheduling paused (and so fired nothing on purpose).
        "paused": beat.get(b"paused") == b"1",
    }


def job_run_duration_percentiles(*, since: timedelta = timedelta(hours=24)) -> dict[str, dict[str, float]]:
    """p50 and p95 run time in seconds of runs that finished (completed or failed) within `since`, per job type."""
    cutoff = timezone.now() - since
    finished = (Status.COMPLETED, Status.FAILED)
    if connection.vendor == "postgresql":
        # The database sorts; a million-row table never crosses the wire.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT job_type,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)),
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
                FROM {JobRun._meta.db_table}
                WHERE finished_at >= %s AND started_at IS NOT NULL AND status = ANY(%s)
                GROUP BY job_type
                """,
                [cutoff, list(finished)],
            )
            return {job_type: {"p50": float(p50), "p95": float(p95)} for job_type, p50, p95 in cursor.fetchall()}
    durations: dict[str, list[float]] = {}
    rows = JobRun.objects.filter(finished_at__gte=cutoff, started_at__isnull=False, status__in=finished)
    for job_type, started, ended in rows.order_by().values_list("job_type", "started_at", "finished_at"):
        durations.setdefault(job_type, []).append((ended - started).total_seconds())
    return {
        job_type: {"p50": _percentile(values, 0.5), "p95": _percentile(values, 0.95)}
        for job_type, values in durations.items()
    }


def _percentile(values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def job_runs_per_hour(*, hours: int = 24) -> list[dict]:
    """Runs created and runs failed in each of the last `hours` whole hours, oldest first, zeros included."""
    now = timezone.now()
    current_hour = now.replace(minute=0, second=0, microsecond=0)
    first_hour = current_hour - timedelta(hours=hours - 1)
    rows = (
        JobRun.objects.filter(created_at__gte=first_hour)
        .annotate(hour=TruncHour("created_at"))
        .order_by()
        .values("hour")
        .annotate(runs=Count("pk"), failed=Count("pk", filter=Q(status=Status.FAILED)))
    )
    by_hour = {row["hour"]: row for row in rows}
    buckets = []
    for index in range(hours):
        hour = first_hour + timedelta(hours=index)
        row = by_hour.get(hour, {})
        buckets.append({"hour": hour, "runs": row.get("runs", 0), "failed": row.get("failed", 0)})
    return buckets


def queues_paused(*, connection=None) -> set[str]:
    """Names of the queues an operator paused (jobs.services.queue_pause)."""
    members = (connection or dispatch.redis_connection()).smembers(dispatch.PAUSED_QUEUES_KEY)
    return {name.decode() for name in members}


def workers_online(*, connection=None) -> list[dict]:
    """Every RQ worker registered in Redis now: name, state, queues, current run, last heartbeat."""
    from rq import Worker

    workers = Worker.all(connection=connection or dispatch.redis_connection())
    return sorted(
        (
            {
                "name": worker.name,
                "state": worker.get_state(),
                "queues": worker.queue_names(),
                "current_job_id": worker.get_current_job_id(),
                "last_heartbeat": worker.last_heartbeat,
                "successful": worker.successful_job_count,
                "failed": worker.failed_job_count,
            }
            for worker in workers
        ),
        key=lambda worker: worker["name"],
    )


def jobs_dashboard() -> dict:
    """Everything the operators' dashboard shows: last 24 h by status, type and hour; queues, workers, scheduler.

    The last 24 hours are read in one pass grouped by (hour, job type, status), a few
    hundred rows, and the counts, failure rates and chart are summed from them; with a
    million runs that is one index range scan instead of four.
    """
    connection = dispatch.redis_connection()
    now = timezone.now()
    first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    groups = (
        JobRun.objects.filter(created_at__gte=now - timedelta(hours=24))
        .annotate(hour=TruncHour("created_at"))
        .order_by()
        .values_list("hour", "job_type", "status")
        .annotate(n=Count("pk"))
    )
    counts = dict.fromkeys(Status.values, 0)
    by_type: dict[str, dict[str, int]] = {}
    per_hour = {first_hour + timedelta(hours=index): {"runs": 0, "failed": 0} for index in range(24)}
    for hour, job_type, status, n in groups:
        counts[status] = counts.get(status, 0) + n
        by_type.setdefault(job_type, {}).setdefault(status, 0)
        by_type[job_type][status] += n
        if hour in per_hour:
            per_hour[hour]["runs"] += n
            per_hour[hour]["failed"] += n if status == Status.FAILED else 0
    percentiles = job_run_duration_percentiles(since=timedelta(hours=24))
    types = []
    for job_type in sorted(set(by_type) | set(percentiles)):
        statuses = by_type.get(job_type, {})
        failed, finished = (
            statuses.get(Status.FAILED, 0),
            statuses.get(Status.FAILED, 0) + statuses.get(Status.COMPLETED, 0),
        )
        timing = percentiles.get(job_type, {})
        types.append(
            {
                "job_type": job_type,
                "runs": sum(statuses.values()),
                "failed": failed,
                "failure_rate": failed / finished if finished else None,
                "p50": timing.get("p50"),
                "p95": timing.get("p95"),
            }
        )
    all_failed, all_finished = counts[Status.FAILED], counts[Status.FAILED] + counts[Status.COMPLETED]
    depths = queue_depths(connection=connection)
    paused = queues_paused(connection=connection)
    oldest = oldest_queued_age()
    return {
        "counts": counts,
        "total": sum(counts.values()),
        "failure_rate": all_failed / all_finished if all_finished else 0.0,
        "types": types,
        "queues": [{"name": name, "depth": depths[name], "paused": name in paused} for name in QUEUES],
        "delayed": depths["delayed"],
        "oldest_queued_seconds": oldest.total_seconds() if oldest is not None else None,
        "workers": workers_online(connection=connection),
        "heartbeat": scheduler_heartbeat(connection=connection),
        "quarantine": quarantine_latest(connection=connection),
        # Shown when the scheduler found Redis had lost schedule entries and rebuilt them.
        "entries_rebuilt": entries.entries_rebuilt_last(connection=connection),
        "per_hour": [{"hour": hour, **bucket} for hour, bucket in per_hour.items()],
    }


def quarantine_latest(*, limit: int = 10, connection=None) -> list[dict]:
    """The latest jobs and scheduler entries refused as hostile or unreadable (jobs.entrypoints)."""
    return [
        {**record, "at": datetime.fromtimestamp(record["at"], tz=UTC)}
        for record in quarantined(limit=limit, connection=connection)
    ]


def job_run_duration_histogram(buckets: tuple[float, ...]) -> dict[str, dict]:
    """Run times of finished runs (completed or failed) kept in the table, per job type, as a
    cumulative histogram: {"buckets": [runs <= each bound], "count": all, "sum": seconds}.
    One query; the counts only grow until `jobs_prune` deletes old runs."""
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    aggregates = {
        f"le_{index}": Count("pk", filter=Q(duration__lte=timedelta(seconds=bound)))
        for index, bound in enumerate(buckets)
    }
    rows = (
        JobRun.objects.filter(status__in=(Status.COMPLETED, Status.FAILED), started_at__isnull=False)
        .exclude(finished_at__isnull=True)
        .alias(duration=duration)
        .order_by()
        .values("job_type")
        .annotate(total=Count("pk"), seconds=Sum("duration"), **aggregates)
    )
    return {
        row["job_type"]: {
            "buckets": [row[f"le_{index}"] for index in range(len(buckets))],
            "count": row["total"],
            "sum": row["seconds"].total_seconds() if row["seconds"] is not None else 0.0,
        }
        for row in rows
    }


def scheduling_switch_get():
    """The scheduling switch (a single row): paused or running, since when, by whom and why."""
    return SchedulingSwitch.objects.filter(pk=1).first() or SchedulingSwitch(pk=1)


def scheduling_paused() -> bool:
    """Whether an operator has paused all scheduling."""
    return SchedulingSwitch.objects.filter(pk=1, paused=True).exists()


def scheduler_state(*, connection=None) -> dict:
    """Whether scheduling runs (the switch, then the heartbeat), and schedules per state, tier and periodic apart."""
    switch = scheduling_switch_get()
    try:
        beat = scheduler_heartbeat(connection=connection)
    except (redis.RedisError, OSError):
        beat = None
    if switch.paused:
        state = "paused"
    elif beat is None:
        state = "missing"
    elif beat["age_seconds"] > settings.JOBS_MONITOR_HEARTBEAT_SECONDS:
        state = "stale"
    else:
        state = "running"
    # One pass over the schedules: a count per (kind, state), each state's filter as SCHEDULE_STATE_FILTERS says.
    kinds = {"tier": Q(periodic_job__isnull=True), "periodic": Q(periodic_job__isnull=False)}
    totals = Schedule.objects.aggregate(
        **{
            f"{kind}:{name}": Count("pk", filter=condition & is_kind)
            for kind, is_kind in kinds.items()
            for name, condition in SCHEDULE_STATE_FILTERS.items()
        }
    )
    counts = {kind: {str(name): totals[f"{kind}:{name}"] for name in SCHEDULE_STATE_FILTERS} for kind in kinds}
    return {
        "state": state,
        "paused": switch.paused,
        "changed_at": switch.changed_at,
        "changed_by": switch.changed_by.get_username() if switch.changed_by_id else None,
        "reason": switch.reason,
        "heartbeat": beat,
        "schedules": counts["tier"],
        "periodic_jobs": counts["periodic"],
    }


def periodic_jobs_disabled_builtin():
    """Built-in periodic jobs an operator has disabled: work the system relies on is not being done."""
    return list(PeriodicJob.objects.filter(builtin=True, enabled=False).order_by("name"))
