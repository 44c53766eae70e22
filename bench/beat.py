"""django-celery-beat's DatabaseScheduler with N periodic tasks, its tick() sending due entries to a
Redis broker, for bench/scheduling.py to compare with ours in the same run. Run as a subprocess
(its own settings and SQLite file): `python -m bench.beat N REDIS_URL SECONDS`; prints
"<sent> <seconds> <setup seconds>".

Every task runs every second (an interval schedule) and was last run a minute ago, so all N
are due at once, as the 10,000 due periodic jobs of our pass are.
"""

import json
import os
import sys
import time
from datetime import timedelta


def main(n: int, redis_url: str, seconds: float) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.beat_settings"
    import django

    django.setup()
    from celery import Celery
    from django.core.management import call_command
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks
    from django_celery_beat.schedulers import DatabaseScheduler

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    ago = timezone.now() - timedelta(minutes=1)
    PeriodicTask.objects.bulk_create(
        [
            PeriodicTask(
                name=f"task {i}",
                task="bench.noop",
                interval=every,
                kwargs=json.dumps({"subscription_id": i}),
                last_run_at=ago,
            )
            for i in range(n)
        ],
        batch_size=5000,
    )
    PeriodicTasks.update_changed()
    app = Celery("bench", broker=redis_url, set_as_current=True)
    app.conf.beat_scheduler = "django_celery_beat.schedulers:DatabaseScheduler"
    scheduler = DatabaseScheduler(app=app)
    setup = time.perf_counter() - started

    sent = 0
    apply_async = scheduler.apply_async

    def counted(*args, **kwargs):
        nonlocal sent
        sent += 1
        return apply_async(*args, **kwargs)

    scheduler.apply_async = counted
    started = time.perf_counter()
    while time.perf_counter() - started < seconds and sent < n:
        scheduler.tick()
    elapsed = time.perf_counter() - started
    print(f"{sent} {elapsed} {setup}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]))
