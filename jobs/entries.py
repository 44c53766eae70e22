"""The Redis side of schedules: one rq-scheduler entry per enabled Schedule row.

An entry is what rq-scheduler itself stores: a member `schedule-<pk>` of its
scheduled-jobs sorted set, scored by the next run (unix seconds), and an RQ job hash
of the same id whose function is FIRE with the schedule's pk. KordantScheduler
fires due entries in bulk without reading the hashes; a stock rq-scheduler would
enqueue FIRE for a worker instead, which calls the same service. The hash holds only
the fields RQ needs to load and run it (data, origin, status), which keeps an entry
under 700 bytes of Redis.

Entries are derived from the database and can always be rebuilt (`sync_schedules`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from rq_scheduler import Scheduler

from jobs.dispatch import redis_connection
from jobs.models import schedule_entry_id

SCHEDULED_KEY = Scheduler.scheduled_jobs_key
ENTRY_PREFIX = "schedule-"
# A wire contract like jobs.runner.execute: stored entries name it.
FIRE = "jobs.scheduling.schedule_fire"
# The queue a stock rq-scheduler would put FIRE on: it is quick bookkeeping, ahead of scans.
FIRE_QUEUE = "high"
_JOB_KEY = "rq:job:"


def _hash(pk: int) -> dict[str, str]:
    return {
        # RQ's JSON job data: (function, instance, args, kwargs), stored uncompressed.
        "data": json.dumps([FIRE, None, [pk], {}], separators=(",", ":")),
        "origin": FIRE_QUEUE,
        "status": "scheduled",
        # rq-scheduler's own cron entries keep their hash between ticks the same way.
        "result_ttl": "-1",
    }


def pk_of(entry_id: str | bytes) -> int | None:
    """The schedule pk an entry id names, or None for an entry that is not a schedule's."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    if not text.startswith(ENTRY_PREFIX):
        return None
    number = text[len(ENTRY_PREFIX) :]
    return int(number) if number.isdigit() else None


def entries_write(next_runs: dict[int, datetime], *, connection=None) -> None:
    """Create or move entries: the hash and the sorted-set score, in one pipeline."""
    if not next_runs:
        return
    connection = connection or redis_connection()
    pipe = connection.pipeline(transaction=False)
    for pk in next_runs:
        pipe.hset(_JOB_KEY + schedule_entry_id(pk), mapping=_hash(pk))
    pipe.zadd(SCHEDULED_KEY, {schedule_entry_id(pk): at.timestamp() for pk, at in next_runs.items()})
    pipe.execute()


def entries_move(next_runs: dict[int, datetime], *, connection=None) -> None:
    """Re-score existing entries (after a firing); their hashes are unchanged."""
    if next_runs:
        (connection or redis_connection()).zadd(
            SCHEDULED_KEY, {schedule_entry_id(pk): at.timestamp() for pk, at in next_runs.items()}
        )


def entries_remove(pks: Iterable[int], *, connection=None) -> int:
    """Remove entries; return how many were there."""
    ids = [schedule_entry_id(pk) for pk in pks]
    if not ids:
        return 0
    connection = connection or redis_connection()
    pipe = connection.pipeline(transaction=False)
    pipe.zrem(SCHEDULED_KEY, *ids)
    pipe.delete(*(_JOB_KEY + entry_id for entry_id in ids))
    removed, _ = pipe.execute()
    return removed


def entries_state(pks: list[int], *, connection=None) -> dict[int, float | None]:
    """Each schedule's entry score, or None when the entry (score or hash) is missing."""
    if not pks:
        return {}
    connection = connection or redis_connection()
    ids = [schedule_entry_id(pk) for pk in pks]
    pipe = connection.pipeline(transaction=False)
    pipe.zmscore(SCHEDULED_KEY, ids)
    for entry_id in ids:
        pipe.exists(_JOB_KEY + entry_id)
    scores, *exists = pipe.execute()
    return {pk: score if present else None for pk, score, present in zip(pks, scores, exists, strict=True)}


def entry_pks(*, connection=None, batch: int = 10_000) -> set[int]:
    """Every schedule pk that has an entry in the sorted set."""
    connection = connection or redis_connection()
    found: set[int] = set()
    for member in connection.zscan_iter(SCHEDULED_KEY, match=f"{ENTRY_PREFIX}*", count=batch):
        pk = pk_of(member[0])
        if pk is not None:
            found.add(pk)
    return found


def due_entries(now: float, *, limit: int, connection=None) -> tuple[list[int], list[str]]:
    """Entries due by `now`, oldest first: (schedule pks, ids of other rq-scheduler jobs)."""
    connection = connection or redis_connection()
    ours: list[int] = []
    others: list[str] = []
    for member in connection.zrangebyscore(SCHEDULED_KEY, "-inf", now, start=0, num=limit):
        pk = pk_of(member)
        if pk is None:
            others.append(member.decode())
        else:
            ours.append(pk)
    return ours, others
