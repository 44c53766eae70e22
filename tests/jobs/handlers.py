"""Job types that exist only in tests: they fail, block and stop on command.

Worker processes started by tests import this module through JOBS_EXTRA_MODULES.
Blocking handlers talk to the test through Redis lists, so tests wait on events,
never on sleeps.
"""

import time

import django_rq
from pydantic import Field

from jobs.errors import PermanentJobError, RetryableJobError
from jobs.registry import Payload, job_type


class FailPayload(Payload):
    message: str = "boom"
    retry_after: float | None = None


class BlockPayload(Payload):
    name: str = "block"
    key: str | None = None
    seconds: float = 30


def started_key(name: str) -> str:
    return f"tests:started:{name}"


def release_key(name: str) -> str:
    return f"tests:release:{name}"


def blpop_within(connection, key: str, timeout: float):
    """BLPOP `key` for up to `timeout` seconds, in short waits.

    redis-py 8 gives every connection a 5 s socket timeout, so one long BLPOP raises
    instead of waiting when a worker process is slow to start on a busy machine.
    """
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if popped := connection.blpop([key], timeout=max(0.1, min(1.0, left))):
            return popped
    return None


@job_type("tests.fail", payload=FailPayload, queue="default")
def fail(ctx, payload):
    if payload.retry_after is not None:
        raise RetryableJobError(payload.message, retry_after=payload.retry_after)
    raise RuntimeError(payload.message)


@job_type("tests.permanent", payload=FailPayload, queue="default")
def permanent(ctx, payload):
    raise PermanentJobError(payload.message)


def _block(ctx, payload):
    """Announce the start, then wait for release or cancellation, polling both."""
    connection = django_rq.get_connection("default")
    connection.rpush(started_key(payload.name), str(ctx.job_run_id))
    waited = 0.0
    while waited < payload.seconds:
        if ctx.cancelled:
            return {"stopped": "cancelled"}
        if connection.blpop([release_key(payload.name)], timeout=0.1):
            ctx.progress(100, "released")
            return {"released": True}
        waited += 0.1
    return {"released": False}


@job_type("tests.block", payload=BlockPayload, queue="default", timeout=60)
def block(ctx, payload):
    return _block(ctx, payload)


@job_type("tests.slow", payload=BlockPayload, queue="default", timeout=1)
def slow(ctx, payload):
    connection = django_rq.get_connection("default")
    connection.blpop([release_key(payload.name)], timeout=int(payload.seconds))
    return {"finished": True}


@job_type("tests.singleton", payload=BlockPayload, queue="default", singleton_key=lambda p: p.key)
def singleton(ctx, payload):
    return _block(ctx, payload)


@job_type("tests.supersede", payload=BlockPayload, queue="default", supersede_key=lambda p: p.key)
def supersede(ctx, payload):
    return _block(ctx, payload)


@job_type("tests.stubborn", payload=BlockPayload, queue="default", timeout=120)
def stubborn(ctx, payload):
    """Never looks at ctx.cancelled: only a forced stop ends it early."""
    connection = django_rq.get_connection("default")
    connection.rpush(started_key(payload.name), str(ctx.job_run_id))
    connection.blpop([release_key(payload.name)], timeout=int(payload.seconds))
    return {"finished": True}


class SizePayload(Payload):
    size: int


@job_type("tests.big", payload=SizePayload, queue="default")
def big(ctx, payload):
    """A result larger than a pipe's buffer: a forking worker's horse must still hand it over."""
    return {"data": "x" * payload.size}


# Set by the warm-up in the worker's parent; a horse sees it only if the parent ran it first.
WARMED_IN = {"pid": None}


def _remember_warm_up():
    import os

    WARMED_IN["pid"] = os.getpid()


@job_type("tests.warmed", payload=Payload, queue="low", warm_up=_remember_warm_up)
def warmed(ctx, payload):
    """Report where the warm-up ran and where the handler runs."""
    import os

    from django.db import connections

    # A horse whose parent claimed the run has no database connection of its own yet.
    db_connected = any(c.connection is not None for c in connections.all(initialized_only=True))
    return {"warmed_in": WARMED_IN["pid"], "runs_in": os.getpid(), "db_connected": db_connected}


@job_type("tests.warm_up_fails", payload=Payload, queue="low", warm_up=lambda: 1 / 0)
def warm_up_fails(ctx, payload):
    """Its warm-up raises; the job runs all the same."""
    return {"ran": True}


@job_type("tests.flaky", payload=Payload, queue="default")
def flaky(ctx, payload):
    """Fails its first attempt, completes the next one."""
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return {"attempt": ctx.attempt}


class StrictPayload(Payload):
    code: str = Field(pattern=r"^[A-Z]{3}$", description="Three capital letters")
    count: int = Field(default=1, ge=1, le=10)


@job_type("tests.strict", payload=StrictPayload, queue="default")
def strict(ctx, payload):
    """A schema with rules the generated form only partly knows (the enqueue page's tests)."""
    return {"code": payload.code, "count": payload.count}


class LimitedPayload(Payload):
    name: str = "limited"
    key: str = "k"
    seconds: float = 0.2
    block: bool = False


# Counts the runs of tests.limited in flight and the most ever seen, across processes.
_IN_FLIGHT = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
return n
"""


def in_flight_keys(name: str) -> tuple[str, str]:
    return f"tests:in-flight:{name}", f"tests:in-flight-max:{name}"


@job_type("tests.limited", payload=LimitedPayload, queue="default", timeout=30, concurrency_limit=1, limit_key="{key}")
def limited(ctx, payload):
    """At most one at a time per key: records how many ran at once, then works (or blocks) a while."""
    connection = django_rq.get_connection("default")
    count = connection.register_script(_IN_FLIGHT)
    count(keys=in_flight_keys(payload.name), args=[1])
    connection.rpush(started_key(payload.name), str(ctx.job_run_id))
    try:
        if payload.block:
            connection.blpop([release_key(payload.name)], timeout=int(payload.seconds))
        else:
            time.sleep(payload.seconds)  # the work itself: overlapping runs would overlap here
    finally:
        count(keys=in_flight_keys(payload.name), args=[-1])
    return {"done": True}


@job_type("tests.rated", payload=Payload, queue="default", rate_limit="5/s")
def rated(ctx, payload):
    """At most five starts a second, across all workers."""
    return {"done": True}
