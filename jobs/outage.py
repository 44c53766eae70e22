"""Riding out a Redis outage in a long-running loop (the scheduler's, a worker's).

Redis may be restarted, fail over or vanish for a minute while everything runs. A loop
that meets a connection error must not end its process (under honcho one exit stops
every process): it logs the outage once, waits a little longer each time (never more
than a few seconds, so it resumes promptly once Redis answers), and logs once more
when Redis is back.
"""

from __future__ import annotations

import logging
import time

import redis

# What "Redis is not answering" looks like from redis-py (BusyLoadingError, a Redis still
# loading its data after a restart, is a ConnectionError too).
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class RedisOutage:
    """One process's view of Redis: the first failure is logged, later ones only waited on."""

    def __init__(self, logger: logging.Logger, who: str, *, first_wait: float = 0.5, longest_wait: float = 5.0):
        self.logger = logger
        self.who = who
        self.first_wait = first_wait
        self.longest_wait = longest_wait
        self.since: float | None = None
        self.wait = 0.0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> float:
        """Note a failed call; return how long to wait before the next try."""
        if self.since is None:
            self.since = time.monotonic()
            self.wait = self.first_wait
            self.logger.warning(
                "%s: Redis unavailable (%s: %s); carrying on without it and retrying with back-off",
                self.who,
                type(exc).__name__,
                exc,
            )
        else:
            self.wait = min(self.wait * 2, self.longest_wait)
        return self.wait

    def succeeded(self) -> bool:
        """Note that Redis answered; True if that ends an outage."""
        if self.since is None:
            return False
        self.logger.warning("%s: Redis answers again after %.1f s; resuming", self.who, time.monotonic() - self.since)
        self.since = None
        return True
