"""The Redis side of a run: put it on its RQ queue now, or in the delayed set for later.

Every RQ job calls the same entry point, RUNNER, with the JobRun id; the job id is
that same id. RUNNER is a wire contract: queued jobs name it, never rename it.
Redis may lose any of this; the recovery pass rebuilds it from the database.
"""

from __future__ import annotations

import os
import socket
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import django_rq
from django.conf import settings
from rq import Queue, Worker
from rq.utils import now as now_utc
from rq.utils import utcformat
from rq.worker_registration import REDIS_WORKER_KEYS, WORKERS_BY_QUEUE_KEY

from jobs.limits import WAITING_INDEX

RUNNER = "jobs.runner.execute"
# Runs waiting for a later time (delay/at, the next retry), scored by due time (unix seconds).
DELAYED_KEY = "kordant:delayed"
# Names of queues an operator paused: workers take nothing from them; their jobs stay queued.
PAUSED_QUEUES_KEY = "kordant:queues:paused"
# RQ keeps no result: the JobRun row holds it. Failed RQ jobs (a killed work horse) stay a week.
RQ_RESULT_TTL = 0
RQ_FAILURE_TTL = 7 * 24 * 3600


@dataclass(frozen=True)
class Dispatch:
    """What Redis needs to know about a run."""

    id: str
    queue: str
    timeout: int
    run_at: datetime | None = None

    @classmethod
    def of(cls, run) -> Dispatch:
        return cls(str(run.pk), run.queue, run.timeout, run.next_attempt_at or run.scheduled_for)


_clients: dict[str, object] = {}


def redis_connection():
    """This process's Redis client for the configured queues, with its connection pool.

    django_rq builds a new client, pool and socket on every call, which cost a
    subscription save four connects; one client per configuration is reused instead
    (redis-py pools reconnect by themselves after a fork).
    """
    key = repr(sorted(settings.RQ_QUEUES["default"].items()))
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = django_rq.get_connection("default")
    return client


def get_queue(name: str, connection=None) -> Queue:
    return django_rq.get_queue(name, connection=connection or redis_connection())


def push(items: Iterable[Dispatch], *, connection=None, now: float | None = None) -> tuple[list[str], list[str]]:
    """Put due runs on their queues and later ones in the delayed set, in one pipeline.

    Returns (ids queued now, ids delayed). Raises redis errors: the caller decides
    whether that loses anything (it never does: rows stay pending for recovery).
    """
    connection = connection or redis_connection()
    now = time.time() if now is None else now
    due_by_queue: dict[str, list[Dispatch]] = defaultdict(list)
    delayed: dict[str, float] = {}
    for item in items:
        due_at = item.run_at.timestamp() if item.run_at else None
        if due_at is not None and due_at > now:
            delayed[item.id] = due_at
        else:
            due_by_queue[item.queue].append(item)

    pipe = connection.pipeline(transaction=False)
    enqueue = connection.register_script(_ENQUEUE_SCRIPT)
    queued: list[str] = []
    stamp = utcformat(now_utc())
    for queue_name, group in due_by_queue.items():
        for start in range(0, len(group), _SCRIPT_BATCH):
            batch = group[start : start + _SCRIPT_BATCH]
            pairs = [value for item in batch for value in (item.id, item.timeout)]
            header = [queue_name, RUNNER, stamp, RQ_RESULT_TTL, RQ_FAILURE_TTL]
            enqueue(keys=[Queue.redis_queues_keys], args=[*header, *pairs], client=pipe)
        queued.extend(item.id for item in group)
    if delayed:
        pipe.zadd(DELAYED_KEY, delayed)
    pipe.execute()
    return queued, list(delayed)


# What RQ's Queue.enqueue_many writes for a job, field for field, done inside Redis: a
# Python-side rq Job per run (create, validate, to_dict, pack 34 arguments) cost more
# than the rest of a fan-out. The job data is RQ's JSON tuple (function, instance, args,
# kwargs), left uncompressed, which RQ reads as it reads its own compressed form.
# tests/jobs/test_dispatch.py compares the result with what RQ itself writes, so an RQ
# upgrade that changes the format fails a test rather than a worker.
_ENQUEUE_SCRIPT = """
local queue, runner, stamp, result_ttl, failure_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local queue_key = 'rq:queue:' .. queue
redis.call('SADD', KEYS[1], queue_key)
for i = 6, #ARGV, 2 do
    local id = ARGV[i]
    redis.call('HSET', 'rq:job:' .. id,
        'status', 'queued', 'created_at', stamp,
        'data', '["' .. runner .. '",null,["' .. id .. '"],{}]',
        'success_callback_name', '', 'failure_callback_name', '', 'stopped_callback_name', '',
        'started_at', '', 'ended_at', '', 'last_heartbeat', '', 'worker_name', '', 'group_id', '',
        'origin', queue, 'description', 'run ' .. id, 'enqueued_at', stamp,
        'timeout', ARGV[i + 1], 'result_ttl', result_ttl, 'failure_ttl', failure_ttl)
    redis.call('RPUSH', queue_key, id)
end
return (#ARGV - 5) / 2
"""
_SCRIPT_BATCH = 5000


def due_delayed_ids(*, now: float | None = None, limit: int = 5000, connection=None) -> list[str]:
    connection = connection or redis_connection()
    now = time.time() if now is None else now
    return [raw.decode() for raw in connection.zrangebyscore(DELAYED_KEY, "-inf", now, start=0, num=limit)]


def forget_delayed(ids: Iterable[str], *, connection=None) -> None:
    ids = list(ids)
    if ids:
        (connection or redis_connection()).zrem(DELAYED_KEY, *ids)


# RQ job states in which the job will still reach (or is in) the runner. A hash left "failed"
# means RQ gave up on it before our runner could claim it (say, the database refused the
# claim), so for a run we still hold queued it is as good as gone.
_ON_ITS_WAY = frozenset({b"queued", b"started", b"deferred", b"scheduled"})


def presence(ids: list[str], *, connection=None) -> dict[str, bool]:
    """For each run id: is it on its way in Redis, as a waiting or running RQ job, or in the delayed set?"""
    connection = connection or redis_connection()
    pipe = connection.pipeline(transaction=False)
    for run_id in ids:
        pipe.hget(f"rq:job:{run_id}", "status")
        pipe.zscore(DELAYED_KEY, run_id)
        pipe.hexists(WAITING_INDEX, run_id)  # waiting for a concurrency slot (jobs/limits.py)
    answers = pipe.execute()
    return {
        run_id: answers[3 * index] in _ON_ITS_WAY or answers[3 * index + 1] is not None or bool(answers[3 * index + 2])
        for index, run_id in enumerate(ids)
    }


def executing(ids: list[str], *, connection=None) -> dict[str, bool]:
    """For each run id: is an RQ execution of it still in progress (job hash status "started")?"""
    connection = connection or redis_connection()
    pipe = connection.pipeline(transaction=False)
    for run_id in ids:
        pipe.hget(f"rq:job:{run_id}", "status")
    return {run_id: status == b"started" for run_id, status in zip(ids, pipe.execute(), strict=True)}


def workers_alive(names: Iterable[str], *, connection=None) -> dict[str, bool]:
    """Whether each named RQ worker is still registered (its key expires if it dies silently)."""
    connection = connection or redis_connection()
    names = list(names)
    pipe = connection.pipeline(transaction=False)
    for name in names:
        pipe.hmget(f"rq:worker:{name}", "hostname", "pid", "death")
    alive = {}
    hostname = socket.gethostname()
    for name, (host, pid, death) in zip(names, pipe.execute(), strict=True):
        if host is None or death is not None:
            alive[name] = False
        elif host.decode() == hostname and pid and not _pid_alive(int(pid)):
            # Same machine: a SIGKILLed worker is known dead at once, not after its key expires.
            alive[name] = False
        else:
            alive[name] = True
    return alive


def worker_forget(name: str, *, connection=None) -> None:
    """Remove a worker known dead from RQ's registrations, as it would on a clean exit."""
    connection = connection or redis_connection()
    key = Worker.redis_worker_namespace_prefix + name
    queues = connection.hget(key, "queues")
    with connection.pipeline() as pipe:
        pipe.srem(REDIS_WORKER_KEYS, key)
        for queue in (queues or b"").decode().split(","):
            if queue:
                pipe.srem(WORKERS_BY_QUEUE_KEY % queue, key)
        pipe.delete(key)
        pipe.execute()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
