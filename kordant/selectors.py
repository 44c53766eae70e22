import redis
from django.conf import settings
from django.db import connection

# The scheduler passes every second; a heartbeat older than this means it is not running.
SCHEDULER_STALE_SECONDS = 30


def system_health() -> dict[str, str]:
    """Whether the database and Redis answer, and whether the scheduler beats: "ok" or what is wrong."""
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
    report["scheduler"] = _scheduler_state() if report["redis"] == "ok" else "unknown: Redis is down"
    return report


def _scheduler_state() -> str:
    from jobs.selectors import scheduler_heartbeat

    beat = scheduler_heartbeat()
    if beat is None:
        return "missing: no heartbeat"
    if beat["age_seconds"] > SCHEDULER_STALE_SECONDS:
        return f"stale: last heartbeat {beat['age_seconds']:.0f} s ago"
    return "ok"
