"""Session-wide test setup: a real Redis for the whole run.

Unless REDIS_URL names one (CI points it at the machine's Redis, db 15), a private
redis-server is started on a free port for the session and stopped at the end.
pytest-django has already read the settings by the time any conftest runs, so the
Redis URL is switched on the live settings object, and exported for any worker
process a test starts.
"""

import os
import tempfile

import pytest

_private_redis = None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    global _private_redis
    if os.environ.get("REDIS_URL"):
        return
    from django.conf import settings

    from kordant.embedded_redis import EmbeddedRedis, free_port

    data_dir = tempfile.mkdtemp(prefix="kordant-test-redis-")
    _private_redis = EmbeddedRedis(data_dir, port=free_port(), persist=False).start()
    os.environ["REDIS_URL"] = _private_redis.url
    settings.REDIS_URL = _private_redis.url
    settings.REDIS_EMBEDDED = False
    settings.RQ_QUEUES = {name: {**queue, "URL": _private_redis.url} for name, queue in settings.RQ_QUEUES.items()}


def pytest_unconfigure(config):
    if _private_redis is not None:
        _private_redis.stop()
