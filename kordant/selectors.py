import redis
from django.conf import settings
from django.db import connection


def system_health() -> dict[str, str]:
    """Whether the database and Redis answer: "ok" or the error, per component."""
    report = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        report["database"] = "ok"
    except Exception as exc:  # any driver error means the database is not usable
        report["database"] = f"error: {exc.__class__.__name__}"
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
        report["redis"] = "ok"
    except (redis.RedisError, OSError) as exc:
        report["redis"] = f"error: {exc.__class__.__name__}"
    finally:
        client.close()
    return report
