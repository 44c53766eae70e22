"""Limits per job type: how many runs may hold a slot at once, and how many may start per period.

Declared on `@job_type` (`concurrency_limit=5`, `rate_limit="100/s"`, `limit_key=...`) and
overridden per type in settings.JOBS_LIMITS; `jobs.checks` validates that setting at start-up.

Both limits are checked when a worker claims a run (jobs.runner.claim), in the one Lua
script below, so they hold across every worker on every machine sharing Redis:

- concurrency: `<key>:holders` is a sorted set of run ids scored by when their hold
  expires. A run over the limit waits in `<key>:waiting` (oldest first), its JobRun still
  queued; when a holder finishes, the next waiting run is given the freed slot and pushed
  back to its queue. Why not RQ 3's `RateLimit`: it is set when a job is enqueued through
  `Queue.enqueue` and counts queued jobs as holders, while our runs reach Redis through
  jobs.dispatch's bulk script and the delayed set, and a held run must not disappear from
  the recovery pass (RQ parks it with a status, `rate_limited`, that pass does not know).
  A hold expires on its own after the run's timeout plus JOBS_LIMIT_LEASE_GRACE_SECONDS:
  an attempt cannot run longer than its timeout (RQ kills the work horse), so a killed
  worker never keeps a slot for ever; the recovery pass releases it sooner when it
  records the attempt as lost.
- rate: `<key>:starts` is a sliding log of start times (Redis time, so every machine
  agrees, in whole microseconds): a run starts only if fewer than N started in the last
  period. One that may not gets a reservation (`<key>:reserved`) at the next free start
  after all earlier reservations, spaced period/N apart so a thousand waiting runs do not
  all come back at once, and waits in the delayed set for it, like a retry; while
  reservations are held, a newcomer queues behind them. A run that comes back to a full
  window (late, or with others) keeps its place and takes the next free start. Its
  JobRun.started_at is the very time the log counted, so the admin's figures and the
  limit agree.

A run held back shows as queued with `progress_message` "waiting for its limit: ..."
(JobRun.waiting_for_limit); the claim clears it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from string import Formatter
from typing import Any

from django.conf import settings

KEY_PREFIX = "kordant:limit:"
# Every run waiting for a concurrency slot → its limit key: the recovery pass asks it
# whether a queued run is on its way, and the promotion pass finds the keys to look at.
WAITING_INDEX = "kordant:limits:waiting"
WAITING_KEYS = "kordant:limits:waiting-keys"
WAITING_MARKER = "waiting for its limit: "
# A run held back goes back to its queue through the delayed set, never sooner than this:
# the worker that held it back is still finishing the RQ job it came in, and deletes that
# job's hash (the same id) when it is done; a run pushed back at once could lose its hash.
REQUEUE_AFTER_SECONDS = 1.0

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")
MAX_KEY_CHARS = 200
SETTING_FIELDS = frozenset({"concurrency_limit", "rate_limit", "limit_key"})


@dataclass(frozen=True)
class Rate:
    """At most `count` starts in any `period` seconds."""

    count: int
    period: float
    text: str

    def __str__(self) -> str:
        return self.text


def parse_rate(text: Any) -> Rate:
    """'100/s', '10/m', '5/h', '30/10s': starts per period; ValueError for anything else."""
    match = _RATE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"rate_limit must look like '100/s', '10/m', '5/h' or '30/10s', not {text!r}")
    count, multiple, unit = int(match[1]), int(match[2] or 1), match[3].rstrip("s") or "s"
    if unit not in _PERIODS:
        raise ValueError(f"rate_limit {text!r}: the period must be s, m or h")
    if count < 1 or multiple < 1:
        raise ValueError(f"rate_limit {text!r}: the count and the period must be at least 1")
    return Rate(count, float(multiple * _PERIODS[unit]), text.strip())


def check_concurrency(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"concurrency_limit must be a whole number of at least 1 (or None), not {value!r}")
    return value


def check_key(value: Any, payload_fields: set[str] | None = None) -> None:
    """A key is a callable of the payload, or a template naming payload fields ("{provider}")."""
    if value is None or callable(value):
        return
    if not isinstance(value, str):
        raise ValueError(f"limit_key must be a callable of the payload or a template string, not {value!r}")
    try:
        names = {name for _, name, _, _ in Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ValueError(f"limit_key {value!r} is not a valid template: {exc}") from None
    if payload_fields is not None and (unknown := names - payload_fields):
        raise ValueError(f"limit_key {value!r} names {', '.join(sorted(unknown))}, not a payload field")


@dataclass(frozen=True)
class Limits:
    """The limits in force for one job type: declared, then overridden by settings.JOBS_LIMITS."""

    job_type: str
    concurrency: int | None = None
    rate: Rate | None = None
    key: Callable[[Any], str | None] | str | None = None

    @property
    def active(self) -> bool:
        return self.concurrency is not None or self.rate is not None

    def key_for(self, payload) -> str:
        """The Redis key this run counts against: the type, or the type and the key of its payload."""
        if self.key is None:
            part = None
        elif callable(self.key):
            part = self.key(payload)
        else:
            part = self.key.format(**payload.model_dump())
        if part in (None, ""):
            return self.job_type
        part = str(part)
        if len(part) > MAX_KEY_CHARS:  # a payload field can be long; a Redis key name need not be
            part = "sha256:" + hashlib.sha256(part.encode()).hexdigest()
        return f"{self.job_type}:{part}"

    def describe(self, key: str) -> str:
        shown = []
        if self.concurrency is not None:
            shown.append(f"at most {self.concurrency} running")
        if self.rate is not None:
            shown.append(f"{self.rate} starts")
        return f"{key} ({', '.join(shown)})"


def limits_for(job_type) -> Limits:
    """The limits in force for a JobType (jobs.registry): its declaration with settings applied."""
    override = (getattr(settings, "JOBS_LIMITS", None) or {}).get(job_type.name, {})
    concurrency = override.get("concurrency_limit", job_type.concurrency_limit)
    rate = override.get("rate_limit", job_type.rate_limit)
    return Limits(
        job_type.name,
        concurrency=concurrency,
        rate=parse_rate(rate) if rate is not None else None,
        key=override.get("limit_key", job_type.limit_key),
    )


def settings_problems(registry) -> list[str]:
    """What is wrong with settings.JOBS_LIMITS, one message per bad entry (jobs.checks shows them)."""
    configured = getattr(settings, "JOBS_LIMITS", None)
    if configured is None:
        return []
    if not isinstance(configured, dict):
        return [f"JOBS_LIMITS must be a dict of job type → limits, not {type(configured).__name__}"]
    problems = []
    for name, entry in configured.items():
        where = f"JOBS_LIMITS[{name!r}]"
        if name not in registry:
            problems.append(f"{where}: no job type is called {name!r}")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{where} must be a dict such as {{'concurrency_limit': 5}}, not {entry!r}")
            continue
        if unknown := set(entry) - SETTING_FIELDS:
            problems.append(f"{where}: unknown setting(s) {', '.join(sorted(map(str, unknown)))}")
        fields = set(registry.get(name).payload.model_fields)
        for field, check in (
            ("concurrency_limit", check_concurrency),
            ("rate_limit", lambda value: value is None or parse_rate(value)),
            ("limit_key", lambda value, fields=fields: check_key(value, fields)),
        ):
            if field in entry:
                try:
                    check(entry[field])
                except ValueError as exc:
                    problems.append(f"{where}: {exc}")
    return problems


# --- Redis ------------------------------------------------------------------------------
#
# Times are whole microseconds (Redis TIME), exact in a Lua number up to 2^53; every number
# handed to Redis goes through `n()`, because Lua's own tostring keeps only 14 digits and
# would round a start time by up to 50 microseconds: enough for JobRun.started_at to
# disagree with the window the limit counted it in.


def _keys(key: str) -> tuple[str, ...]:
    base = KEY_PREFIX + key
    return f"{base}:holders", f"{base}:waiting", f"{base}:starts", f"{base}:next", f"{base}:reserved"


_LUA_PRELUDE = """
local function n(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

# KEYS: holders, waiting, starts, next, reserved, WAITING_INDEX, WAITING_KEYS
# ARGV: run id, concurrency (0: none), hold µs, rate count (0: none), rate period µs, key,
#       how long µs a reservation stays valid after its time
# Returns {"ok", now µs, start member}, {"concurrency", now µs} or {"rate", start µs, released}.
#
# Rate: `starts` holds the starts of the last period: a run starts only if fewer than
# `count` did. One that may not is given a reservation in `reserved`, at the next free
# start after every reservation before it (`next` moves period/count on each time), and
# comes back then. Reservations go first: while any is held, a run that has none queues
# behind them instead of taking a start a waiting run was promised. A run that comes back
# to a full window (runs often come back late, and together) keeps its place and gets the
# next free start.
_ADMIT = (
    _LUA_PRELUDE
    + """
local run, concurrency, hold = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local count, period, grace = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[7])
local holding = false
if concurrency > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', n(now))
    holding = redis.call('ZSCORE', KEYS[1], run) ~= false
    if not holding and redis.call('ZCARD', KEYS[1]) >= concurrency then
        redis.call('ZADD', KEYS[2], 'NX', n(now), run)
        redis.call('HSET', KEYS[6], run, ARGV[6])
        redis.call('SADD', KEYS[7], ARGV[6])
        return {'concurrency', now}
    end
end
local member = ''
if count > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', n(now - period))
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', n(now - grace))
    local full = redis.call('ZCARD', KEYS[3]) >= count
    local free = now
    if full then
        free = tonumber(redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')[2]) + period
    end
    local reserved = redis.call('ZSCORE', KEYS[5], run)
    local at = nil
    if reserved then
        if full then
            at = math.max(free, tonumber(reserved))
            redis.call('ZADD', KEYS[5], n(at), run)
        end
    elseif full or redis.call('ZCARD', KEYS[5]) > 0 then
        at = math.max(free, tonumber(redis.call('GET', KEYS[4]) or '0'))
        local keep = math.ceil((at - now + 2 * period) / 1000)
        redis.call('SET', KEYS[4], n(at + math.ceil(period / count)), 'PX', n(keep))
        redis.call('ZADD', KEYS[5], n(at), run)
    end
    if at then
        local released = 0
        if holding then
            redis.call('ZREM', KEYS[1], run)
            released = 1
        end
        return {'rate', at, released}
    end
    member = run .. '@' .. n(now)
    redis.call('ZADD', KEYS[3], n(now), member)
    redis.call('ZREM', KEYS[5], run)
    redis.call('PEXPIRE', KEYS[3], n(math.ceil(period / 1000) + 1000))
end
if concurrency > 0 then
    redis.call('ZADD', KEYS[1], n(now + hold), run)
    redis.call('ZREM', KEYS[2], run)
    redis.call('HDEL', KEYS[6], run)
end
return {'ok', now, member}
"""
)

# KEYS: holders, waiting, starts, WAITING_INDEX, WAITING_KEYS
# ARGV: run id ('' to release nothing), concurrency, hold µs for a promoted run, start member, key
# Gives each free slot to the oldest waiting run and returns the ids promoted.
_RELEASE = (
    _LUA_PRELUDE
    + """
if ARGV[1] ~= '' then
    redis.call('ZREM', KEYS[1], ARGV[1])
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('HDEL', KEYS[4], ARGV[1])
end
if ARGV[4] ~= '' then
    redis.call('ZREM', KEYS[3], ARGV[4])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', n(now))
local concurrency = tonumber(ARGV[2])
local promoted = {}
while concurrency > 0 and redis.call('ZCARD', KEYS[1]) < concurrency do
    local popped = redis.call('ZPOPMIN', KEYS[2])
    if #popped == 0 then
        break
    end
    redis.call('ZADD', KEYS[1], n(now + tonumber(ARGV[3])), popped[1])
    redis.call('HDEL', KEYS[4], popped[1])
    table.insert(promoted, popped[1])
end
if redis.call('ZCARD', KEYS[2]) == 0 then
    redis.call('SREM', KEYS[5], ARGV[5])
end
return promoted
"""
)

_scripts: dict[tuple[int, str], Any] = {}


def _script(connection, source: str):
    script = _scripts.get((id(connection), source))
    if script is None:
        script = _scripts[(id(connection), source)] = connection.register_script(source)
    return script


@dataclass(frozen=True)
class Admission:
    """What the limits said about one run: start now, or wait (for a slot, or until `at`)."""

    allowed: bool
    key: str = ""
    waiting_for: str = ""  # "concurrency" or "rate"
    at: datetime | None = None  # the start time (allowed), or the next free start (rate)
    start_member: str = ""
    released: bool = False  # a promoted run gave its slot back to wait for its rate

    @property
    def message(self) -> str:
        return WAITING_MARKER + self.waiting_for


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _instant(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def hold_seconds(timeout: int) -> float:
    """How long a slot is held at most: the attempt's timeout, then the grace for its recording."""
    return timeout + settings.JOBS_LIMIT_LEASE_GRACE_SECONDS


def admit(limits: Limits, key: str, run_id: str, timeout: int, connection) -> Admission:
    """Take a slot and a start for this run, or say what it waits for; atomic across workers."""
    holders, waiting, starts, next_key, reserved = _keys(key)
    answer = _script(connection, _ADMIT)(
        keys=[holders, waiting, starts, next_key, reserved, WAITING_INDEX, WAITING_KEYS],
        args=[
            run_id,
            limits.concurrency or 0,
            _micros(hold_seconds(timeout)),
            limits.rate.count if limits.rate else 0,
            _micros(limits.rate.period) if limits.rate else 0,
            key,
            _micros(_promoted_hold()),
        ],
    )
    verdict = answer[0].decode()
    at = _instant(int(answer[1]))
    if verdict == "ok":
        return Admission(True, key, at=at, start_member=answer[2].decode())
    if verdict == "concurrency":
        return Admission(False, key, waiting_for=f"concurrency {limits.describe(key)}")
    return Admission(False, key, waiting_for=f"rate {limits.describe(key)}", at=at, released=bool(answer[2]))


def release(limits: Limits, key: str, run_id: str, connection, *, start_member: str = "") -> list[str]:
    """Give back a run's slot (and its start, if it did not start after all); returns the runs promoted."""
    holders, waiting, starts, _, _ = _keys(key)
    promoted = _script(connection, _RELEASE)(
        keys=[holders, waiting, starts, WAITING_INDEX, WAITING_KEYS],
        args=[run_id, limits.concurrency or 0, _micros(_promoted_hold()), start_member, key],
    )
    return [raw.decode() for raw in promoted]


def _promoted_hold() -> float:
    # A promoted run holds its slot from the promotion, and a rate reservation stays its own
    # after its time, while the run travels back through the delayed set and its queue.
    return settings.JOBS_LIMIT_PROMOTED_HOLD_SECONDS


def waiting_keys(connection) -> set[str]:
    """The limit keys some run waits on."""
    return {raw.decode() for raw in connection.smembers(WAITING_KEYS)}


def holders(key: str, connection) -> list[str]:
    """Run ids holding a slot of this key (expired holds included until the next admit or release)."""
    return [raw.decode() for raw in connection.zrange(_keys(key)[0], 0, -1)]
