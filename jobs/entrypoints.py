"""What an RQ job read from Redis may ask a worker or the scheduler to do: the one allow-list.

A job hash names a function by its dotted path, and RQ imports and calls whatever it names,
its callbacks too. Whoever can write to Redis must not be able to run code that way, so
the project's job class (jobs.worker.JSONJob) accepts only the entry points listed here,
each with the one argument shape the project itself writes, and no callbacks, dependencies,
webhooks, repeats or rate limits (the project uses none). Everything else is refused by
name, before anything is imported, and set aside in a short quarantine list that operators
see on the dashboard. RUNNER and FIRE are wire contracts: never rename them casually.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

from django.conf import settings

from jobs.dispatch import RUNNER, redis_connection

# What a schedule entry calls (jobs.entries writes them): fire one schedule.
FIRE = "jobs.scheduling.schedule_fire"


def _is_run_id(job_id: str, args, kwargs) -> bool:
    # The runner takes the JobRun id, which is also the RQ job id (jobs.dispatch.push).
    if kwargs or not isinstance(args, list) or len(args) != 1 or args[0] != job_id:
        return False
    try:
        return str(uuid.UUID(job_id)) == job_id
    except (ValueError, TypeError, AttributeError):
        return False


def _is_schedule_pk(job_id: str, args, kwargs) -> bool:
    # A schedule entry: `schedule-<pk>` firing that pk (jobs.entries).
    from jobs.models import schedule_entry_id

    if kwargs or not isinstance(args, list) or len(args) != 1:
        return False
    pk = args[0]
    return type(pk) is int and pk > 0 and job_id == schedule_entry_id(pk)


# Function path -> does (job id, args, kwargs) have the shape the project writes?
ENTRY_POINTS: dict[str, Callable[[str, object, object], bool]] = {
    RUNNER: _is_run_id,
    FIRE: _is_schedule_pk,
}

_SHOWN = 80  # characters of a hostile value repeated in a log line or a quarantine record


def shown(value) -> str:
    """A hostile value, short enough for one log line."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "...'"


def job_refusal(job, *, queue_name: str | None = None) -> str | None:
    """Why this job must not run (None when it may): read from its hash, importing nothing."""
    from rq.exceptions import DeserializationError

    unreadable = getattr(job, "_unreadable", None)
    if unreadable:
        return f"unreadable job hash ({unreadable})"
    try:
        func_name, instance, args, kwargs = job.func_name, job.instance, job.args, job.kwargs
    except DeserializationError:
        return "job data is not the JSON job tuple (pickle, compressed pickle or garbage)"
    rule = ENTRY_POINTS.get(func_name) if isinstance(func_name, str) else None
    if rule is None:
        return f"function {shown(func_name)} is not a registered entry point"
    if instance is not None:
        return f"job calls {func_name} on an instance"
    if not rule(job.id, args, kwargs):
        return f"arguments {shown(args)} {shown(kwargs)} do not fit {func_name}"
    for kind in ("success", "failure", "stopped"):
        if name := getattr(job, f"_{kind}_callback_name", None):
            return f"job names a {kind} callback {shown(name)}"
    if job._dependency_ids:
        return "job has dependencies"
    if job.webhooks:
        return "job has webhooks"
    if job.repeats_left or job.repeat_intervals:
        return "job repeats"
    if job.rate_limit_key:
        return "job has a rate limit"
    if job.origin not in settings.RQ_QUEUES or (queue_name is not None and job.origin != queue_name):
        return f"job's queue {shown(job.origin)} is not one of ours"
    return None


# The quarantine: the latest refused jobs and unreadable scheduler entries, newest first, for
# operators (the admin dashboard). Bounded, so a flood of hostile entries costs a fixed size.
QUARANTINE_KEY = "kordant:quarantine"
QUARANTINE_KEEP = 100


def quarantine_record(job_id, where: str, reason: str, *, connection=None, pipeline=None) -> None:
    """Keep a short record of a refused job or entry: which, where (worker or scheduler), why."""
    if isinstance(job_id, bytes):
        job_id = job_id.decode(errors="backslashreplace")
    record = {"id": job_id[:_SHOWN], "where": where, "reason": reason, "at": time.time()}
    target = pipeline if pipeline is not None else (connection or redis_connection()).pipeline(transaction=False)
    target.lpush(QUARANTINE_KEY, json.dumps(record))
    target.ltrim(QUARANTINE_KEY, 0, QUARANTINE_KEEP - 1)
    if pipeline is None:
        target.execute()


def quarantined(*, limit: int = QUARANTINE_KEEP, connection=None) -> list[dict]:
    """The latest quarantine records, newest first."""
    raw = (connection or redis_connection()).lrange(QUARANTINE_KEY, 0, limit - 1)
    records = []
    for item in raw:
        # The list is in Redis too: an item we did not write is skipped, never a broken page.
        try:
            record = json.loads(item)
        except ValueError:
            continue
        if (
            isinstance(record, dict)
            and all(isinstance(record.get(field), str) for field in ("id", "where", "reason"))
            and type(record.get("at")) in (int, float)
            and 0 <= record["at"] < 1e11
        ):
            records.append({field: record[field] for field in ("id", "where", "reason", "at")})
    return records
