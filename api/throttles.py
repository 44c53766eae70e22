"""Per-user throttles counted in Redis (the "api" cache), so every web process shares one count.

Rates are read on each request from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (settings
API_THROTTLE_*), not frozen at import as DRF's classes do.
"""

import logging

import redis
from django.core.cache import caches
from rest_framework import throttling
from rest_framework.settings import api_settings

logger = logging.getLogger("api")


class _SharedCount:
    scope: str

    @property
    def cache(self):
        return caches["api"]

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except (redis.RedisError, OSError) as exc:
            # A throttle must not turn a Redis outage into an API outage for reads: fail open.
            logger.warning("throttle %s not applied, Redis unavailable: %s", self.scope, exc)
            return True


class UserThrottle(_SharedCount, throttling.UserRateThrottle):
    scope = "user"


class AnonThrottle(_SharedCount, throttling.AnonRateThrottle):
    scope = "anon"


class EnqueueThrottle(_SharedCount, throttling.UserRateThrottle):
    """Stricter, on POST /jobs/ (and the other actions that create runs)."""

    scope = "enqueue"


class TokenThrottle(_SharedCount, throttling.AnonRateThrottle):
    """Password guessing at POST /auth/token/, counted per client address."""

    scope = "token"
