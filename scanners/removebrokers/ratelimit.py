"""Per-broker rate limit shared by every worker: a sliding one-minute log in Redis.

Each submission to a broker first takes a slot: one Lua script drops the log entries
older than the window, counts the rest and adds this one only if the count is below
the limit, atomically, so any number of workers on any machines share the limit. A
sliding log rather than a fixed per-minute counter: a fixed counter lets twice the
limit through around a minute boundary. Times come from the worker's clock (workers
are NTP-synced, as the scheduler already assumes), which also lets tests move time.
"""

import time
import uuid

from jobs.dispatch import redis_connection

WINDOW_SECONDS = 60.0
KEY_PREFIX = "kordant:removebrokers:rate:"

_TAKE = """
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""


class BrokerRateLimiter:
    """`take(broker_id, limit)` returns 0.0 when a slot was taken, else the seconds until one frees."""

    def __init__(self, connection=None, window: float = WINDOW_SECONDS):
        self.connection = connection or redis_connection()
        self.window = window
        self._script = self.connection.register_script(_TAKE)

    def take(self, broker_id: int, limit: int, now: float | None = None) -> float:
        """Take one slot of `limit` per window for the broker, or say how long until one is free."""
        now = time.time() if now is None else now
        wait = self._script(keys=[f"{KEY_PREFIX}{broker_id}"], args=[now, self.window, limit, uuid.uuid4().hex])
        return max(0.0, float(wait))

    def give_back(self, broker_id: int) -> None:
        """Forget the broker's log (tests, and an operator resetting a broker)."""
        self.connection.delete(f"{KEY_PREFIX}{broker_id}")
