"""Per-user throttles counted in the project's Redis, so every web process shares one count.

A fixed window per scope and user (or client address): one INCR and EXPIRE in one round
trip, whatever the rate. DRF's own throttles keep a list of every request's time in the
window and write it back on each request, which costs more the higher the rate. A
window allows up to twice the rate across its boundary; these limits are against abuse,
not a billing meter. Rates are read on each request from
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (settings API_THROTTLE_*).
"""

from __future__ import annotations

import logging
import time

import redis
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from jobs.dispatch import redis_connection

logger = logging.getLogger("api")
KEY_PREFIX = "kordant:throttle"
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """ "600/minute" -> (600, 60): requests allowed, window in seconds (as DRF reads rates)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period[0]]


class _WindowThrottle(BaseThrottle):
    scope: str

    def ident_for(self, request) -> str | None:
        """Who is counted; None: this throttle does not apply to the request."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        ident = self.ident_for(request)
        if rate is None or ident is None:
            return True
        allowed, seconds = parse_rate(rate)
        now = time.time()
        window = int(now // seconds)
        key = f"{KEY_PREFIX}:{self.scope}:{ident}:{window}"
        try:
            pipe = redis_connection().pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, seconds)
            used, _ = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            # A throttle must not turn a Redis outage into an API outage for reads: fail open.
            logger.warning("throttle %s not applied, Redis unavailable: %s", self.scope, exc)
            return True
        if used <= allowed:
            return True
        self._wait = (window + 1) * seconds - now
        return False

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)


class UserThrottle(_WindowThrottle):
    scope = "user"

    def ident_for(self, request):
        return f"user:{request.user.pk}" if request.user.is_authenticated else None


class AnonThrottle(_WindowThrottle):
    scope = "anon"

    def ident_for(self, request):
        return None if request.user.is_authenticated else f"addr:{self.get_ident(request)}"


class EnqueueThrottle(UserThrottle):
    """Stricter, on POST /jobs/ (and the other actions that create runs)."""

    scope = "enqueue"


class TokenThrottle(_WindowThrottle):
    """Password guessing at POST /auth/token/, counted per client address."""

    scope = "token"

    def ident_for(self, request):
        return f"addr:{self.get_ident(request)}"
