"""The django-celery-beat side of bench/celery_beat.py, in its own process (its app in INSTALLED_APPS,
its packages from var/bench-peers): N periodic tasks every minute, all due, and beat's DatabaseScheduler
ticking against the bench's Redis as broker for a fixed time. Prints one JSON line of figures."""

import json
import os
import sys
import time
from datetime import timedelta


def main(tasks: int, seconds: float) -> dict:
    import django

    django.setup()
    from celery import Celery
    from django.core.management import call_command
    from django.utils import timezone
    from django_celery_beat.models import CrontabSchedule, PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    call_command("migrate", "django_celery_beat", verbosity=0)
    PeriodicTask.objects.all().delete()
    every_minute, _ = CrontabSchedule.objects.get_or_create(
        minute="*", hour="*", day_of_week="*", day_of_month="*", month_of_year="*"
    )
    # Last run two minutes ago: every task is due at once, as our side's 100,000 due periodic jobs are.
    before = timezone.now() - timedelta(minutes=2)
    PeriodicTask.objects.bulk_create(
        [
            PeriodicTask(name=f"bench-{i}", task="bench.noop", crontab=every_minute, last_run_at=before)
            for i in range(tasks)
        ],
        batch_size=5000,
    )
    app = Celery("bench", broker=os.environ["REDIS_URL"], set_as_current=True)
    app.conf.beat_scheduler = "django_celery_beat.schedulers:DatabaseScheduler"
    app.conf.broker_connection_retry_on_startup = True
    started = time.perf_counter()
    scheduler = DatabaseScheduler(app=app)
    load_seconds = time.perf_counter() - started

    sent = 0
    apply_entry = scheduler.apply_entry

    def counting(entry, producer=None):
        nonlocal sent
        sent += 1
        return apply_entry(entry, producer=producer)

    scheduler.apply_entry = counting
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        scheduler.tick()
    elapsed = time.perf_counter() - started
    scheduler.close()
    queued = app.connection_for_write().default_channel.client.llen("celery")
    return {
        "tasks": tasks,
        "load_seconds": load_seconds,
        "sent": sent,
        "queued": queued,
        "seconds": elapsed,
        "sends_per_second": sent / elapsed,
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), float(sys.argv[2]))), flush=True)
