"""The built-in periodic jobs become rows (they were a tuple in jobs/scheduling.py with their
next times in a Redis hash): operators see them in the admin, move them, pause or run them,
and the scheduler fires them through their schedule rows like any other schedule."""

from django.db import migrations
from django.utils import timezone

# (name = job type, cron in UTC, description). Overlap "skip" keeps one of each active at a
# time (the dedupe key `system:<name>` did that before); payloads are empty.
BUILTINS = [
    ("jobs.prune", "17 3 * * *", "Delete finished runs older than JOBS_KEEP_COMPLETED_DAYS / JOBS_KEEP_FAILED_DAYS."),
    (
        "removebrokers.process",
        "* * * * *",
        "Submit the opt-out requests that are due: retries, rate-limited requests, re-checks.",
    ),
    ("voiceprint.batch", "*/5 * * * *", "Analyse pending voice samples an upload's own batch missed."),
    (
        "notifications.reconcile",
        "*/10 * * * *",
        "Settle notifications left queued or sending by a send job that ended.",
    ),
    ("jobs.monitor", "* * * * *", "Email staff when queues, failures or the scheduler leave bounds (JOBS_MONITOR_*)."),
]


def create_builtins(apps, schema_editor):
    from jobs.cron import next_run_after

    PeriodicJob = apps.get_model("jobs", "PeriodicJob")
    Schedule = apps.get_model("jobs", "Schedule")
    now = timezone.now()
    for name, cron, description in BUILTINS:
        job, _ = PeriodicJob.objects.get_or_create(
            name=name,
            owner=None,
            defaults={
                "job_type": name,
                "payload": {},
                "cron_expression": cron,
                "timezone": "UTC",
                "overlap": "skip",
                "catch_up": "one",
                "builtin": True,
                "description": description,
            },
        )
        # The entry follows from the row: the scheduler's start-up sync writes it.
        Schedule.objects.get_or_create(
            periodic_job=job,
            defaults={
                "cron_expression": job.cron_expression,
                "timezone": job.timezone,
                "next_run_at": next_run_after(job.cron_expression, job.timezone, now) if job.enabled else None,
            },
        )


def remove_builtins(apps, schema_editor):
    PeriodicJob = apps.get_model("jobs", "PeriodicJob")
    PeriodicJob.objects.filter(builtin=True, name__in=[name for name, *_ in BUILTINS]).delete()


class Migration(migrations.Migration):
    dependencies = [("jobs", "0005_periodic_jobs")]

    operations = [migrations.RunPython(create_builtins, remove_builtins)]
