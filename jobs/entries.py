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

import time
from collections.abc import Iterable
from datetime import datetime

from rq_scheduler import Scheduler

from jobs.dispatch import redis_connection
from jobs.entrypoints import FIRE  # a wire contract like jobs.runner.execute: stored entries name it
from jobs.models import schedule_entry_id

SCHEDULED_KEY = Scheduler.scheduled_jobs_key
ENTRY_PREFIX = "schedule-"
# The queue a stock rq-scheduler would put FIRE on: it is quick bookkeeping, ahead of scans.
FIRE_QUEUE = "high"
_JOB_KEY = "rq:job:"


def pk_of(entry_id: str | bytes) -> int | None:
    """The schedule pk an entry id names, or None for an entry that is not a schedule's."""
    try:
        text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    except UnicodeDecodeError:
        return None
    if not text.startswith(ENTRY_PREFIX):
        return None
    number = text[len(ENTRY_PREFIX) :]
    # Only the id schedule_entry_id writes: "schedule-007" or "schedule-³" (a digit to
    # str.isdigit, not to int) would never be moved on after firing, and fire every pass.
    if number.isascii() and number.isdigit() and str(int(number)) == number:
        return int(number)
    return None


# Writing and checking entries in Redis itself: one command per batch instead of two
# per entry, which is most of the cost of syncing 100,000 schedules from Python.
_WRITE_SCRIPT = """
-- ARGV: the function, its queue, then pk, score, pk, score, ...
-- The hash is RQ's own job format with JSON data: (function, instance, args, kwargs).
-- Scores go in by ZADDs of 500 members (a fifth less time than a ZADD each).
local scored, n = {}, 0
for i = 3, #ARGV, 2 do
    local id = 'schedule-' .. ARGV[i]
    redis.call('HSET', 'rq:job:' .. id,
        'data', '["' .. ARGV[1] .. '",null,[' .. ARGV[i] .. '],{}]', 'origin', ARGV[2],
        'status', 'scheduled', 'result_ttl', '-1')
    scored[n + 1], scored[n + 2] = ARGV[i + 1], id
    n = n + 2
    if n == 1000 then
        redis.call('ZADD', KEYS[1], unpack(scored, 1, n))
        n = 0
    end
end
if n > 0 then
    redis.call('ZADD', KEYS[1], unpack(scored, 1, n))
end
return (#ARGV - 2) / 2
"""
_STATE_SCRIPT = """
local scores = {}
for i, pk in ipairs(ARGV) do
    local score = false
    if redis.call('EXISTS', 'rq:job:schedule-' .. pk) == 1 then
        score = redis.call('ZSCORE', KEYS[1], 'schedule-' .. pk)
    end
    scores[i] = score
end
return scores
"""
_BATCH = 5000


def entries_write(next_runs: dict[int, datetime], *, connection=None) -> None:
    """Create or move entries: the hash and the sorted-set score."""
    connection = connection or redis_connection()
    items = list(next_runs.items())
    write = connection.register_script(_WRITE_SCRIPT)
    for start in range(0, len(items), _BATCH):
        pairs = [value for pk, at in items[start : start + _BATCH] for value in (pk, repr(at.timestamp()))]
        write(keys=[SCHEDULED_KEY], args=[FIRE, FIRE_QUEUE, *pairs])


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
    connection = connection or redis_connection()
    state = connection.register_script(_STATE_SCRIPT)
    scores: dict[int, float | None] = {}
    for start in range(0, len(pks), _BATCH):
        batch = pks[start : start + _BATCH]
        for pk, score in zip(batch, state(keys=[SCHEDULED_KEY], args=batch), strict=True):
            scores[pk] = float(score) if score is not None else None
    return scores


def entry_count(*, connection=None) -> int:
    """Members of rq-scheduler's set: schedule entries and any other rq-scheduler jobs."""
    return (connection or redis_connection()).zcard(SCHEDULED_KEY)


def entry_pks(*, connection=None, batch: int = 10_000) -> set[int]:
    """Every schedule pk that has an entry in the sorted set."""
    connection = connection or redis_connection()
    found: set[int] = set()
    for member in connection.zscan_iter(SCHEDULED_KEY, match=f"{ENTRY_PREFIX}*", count=batch):
        pk = pk_of(member[0])
        if pk is not None:
            found.add(pk)
    return found


def due_entries(now: float, *, limit: int, connection=None) -> tuple[list[int], list[bytes]]:
    """Entries due by `now`, oldest first: (schedule pks, other members as stored).

    Other members stay bytes: whoever wrote them need not have written UTF-8, and the
    stock path must still be able to remove them.
    """
    connection = connection or redis_connection()
    ours: list[int] = []
    others: list[bytes] = []
    for member in connection.zrangebyscore(SCHEDULED_KEY, "-inf", now, start=0, num=limit):
        pk = pk_of(member)
        if pk is None:
            others.append(member)
        else:
            ours.append(pk)
    return ours, others


# Set (with no expiry) whenever a full sync begins. Entries live only as long as Redis
# keeps its data: when this key is gone, Redis was flushed or restarted empty, and with it
# went every entry, so the scheduler rebuilds them at once. Set before the sync writes,
# so a flush halfway through a sync is noticed too.
BUILT_KEY = "kordant:scheduler:entries-built"
# The last time the scheduler had to rebuild entries it found missing, and why (dashboard).
REBUILT_KEY = "kordant:scheduler:entries-rebuilt"


def entries_mark_built(*, connection=None) -> None:
    (connection or redis_connection()).set(BUILT_KEY, time.time())


def entries_built(*, connection=None) -> bool:
    """False when Redis has lost the entries wholesale (flushed, or restarted without its data)."""
    return bool((connection or redis_connection()).exists(BUILT_KEY))


def entries_rebuilt_record(reason: str, written: int, *, connection=None) -> None:
    """Remember a rebuild of missing entries for a day, for the dashboard."""
    connection = connection or redis_connection()
    connection.hset(REBUILT_KEY, mapping={"at": time.time(), "reason": reason, "written": written})
    connection.expire(REBUILT_KEY, 24 * 3600)


def entries_rebuilt_last(*, connection=None) -> dict | None:
    """The last rebuild of missing entries within a day: age in seconds, why, how many written; or None."""
    found = (connection or redis_connection()).hgetall(REBUILT_KEY)
    if not found:
        return None
    return {
        "age_seconds": max(0.0, time.time() - float(found[b"at"])),
        "reason": found[b"reason"].decode(),
        "written": int(found[b"written"]),
    }
