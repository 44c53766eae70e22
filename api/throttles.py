"""Per-user throttles counted in the project's Redis, so every web process shares one count.

A fixed window per scope and user (or client address): one INCR and EXPIRE in one round
trip, whatever the rate. DRF's own throttles keep a list of every request's time in the
window and write it back on each request, which costs more the higher the rate. A
window allows up to twice the rate across its boundary; these limits are against abuse,
not a billing meter. Rates are read on each request from
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (settings API_THROTTLE_*).
"""

from __future__ import annotations

import hashlib
import logging
import time

import redis
from rest_framework import exceptions
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
        return self._count(request, add=1)

    def _count(self, request, *, add: int, reserve: int = 0) -> bool:
        """Add `add` to the request's count in the current window; False when it (plus `reserve`) is over the rate."""
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
            pipe.incrby(key, add)
            pipe.expire(key, seconds)
            used, _ = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            # A throttle must not turn a Redis outage into an API outage for reads: fail open.
            logger.warning("throttle %s not applied, Redis unavailable: %s", self.scope, exc)
            return True
        if used + reserve <= allowed:
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
        # `_user`, not `user`: read while authentication is still deciding (anonymous_throttle_check).
        user = getattr(request, "_user", None)
        return None if user is not None and user.is_authenticated else f"addr:{self.get_ident(request)}"


class EnqueueThrottle(UserThrottle):
    """Stricter, on POST /jobs/ (and the other actions that create runs)."""

    scope = "enqueue"


class TokenThrottle(_WindowThrottle):
    """Password guessing at POST /auth/token/, counted per client address.

    The address is the connection's unless REST_FRAMEWORK["NUM_PROXIES"] (setting NUM_PROXIES,
    default 0) says how many proxies in front append to X-Forwarded-For: a client writes that
    header itself, so trusting more of it than the proxies wrote is a new address per request.
    """

    scope = "token"

    def ident_for(self, request):
        return f"addr:{self.get_ident(request)}"


class LoginFailureThrottle(_WindowThrottle):
    """Failed logins per username, from any address: guesses spread over many addresses (or
    forged ones) still lock the account for the window, the right password included.

    Checked before the password is; only `record_failure` counts. The username is hashed in
    the key: it is whatever a client sent, and Redis holds no names.
    """

    scope = "login_failures"

    def ident_for(self, request):
        data = request.data
        username = data.get("username") if hasattr(data, "get") else None
        if not isinstance(username, str) or not username.strip():
            return None
        return "user:" + hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]

    def allow_request(self, request, view) -> bool:
        # Counted only when it fails, so this attempt needs a failure left: "10/hour" allows ten.
        return self._count(request, add=0, reserve=1)

    def record_failure(self, request) -> None:
        """Count one failed login for the username the request named."""
        self._count(request, add=1)


def anonymous_throttle_check(request) -> None:
    """Raise Throttled if the client's address is over the anonymous rate, counting this request.

    Authentication classes call it before refusing a credential: DRF authenticates before it
    throttles, so without it a wrong token is a 401 that no throttle ever counts.
    """
    throttle = AnonThrottle()
    if not throttle._count(request, add=1):
        raise exceptions.Throttled(wait=throttle.wait())
