"""The default tier table from the design; operators edit it in the admin afterwards."""

from django.db import migrations

# (tier, job type, frequency, runs on change, description). A config is unique per tier
# and job type, so Premium's "daily scan plus hourly checks" is one hourly DarkWatch config.
DEFAULTS = [
    ("basic", "darkwatch.scan", "monthly", False, "Monthly dark-web scan"),
    ("basic", "hometitle.scan", "monthly", False, "Monthly property-title scan"),
    ("plus", "darkwatch.scan", "weekly", False, "Weekly dark-web scan"),
    ("plus", "hometitle.scan", "weekly", False, "Weekly property-title scan"),
    ("plus", "reports.generate", "monthly", False, "Monthly security report"),
    ("premium", "darkwatch.scan", "hourly", True, "Hourly dark-web checks, and a scan on every watchlist change"),
    ("premium", "hometitle.scan", "daily", True, "Daily property-title scan, and a scan on every property change"),
    ("premium", "reports.generate", "weekly", False, "Weekly security report"),
]


def create_defaults(apps, schema_editor):
    SchedulerConfig = apps.get_model("jobs", "SchedulerConfig")
    for tier, job_type, frequency, run_on_change, description in DEFAULTS:
        SchedulerConfig.objects.get_or_create(
            tier=tier,
            job_type=job_type,
            defaults={"frequency": frequency, "run_on_change": run_on_change, "description": description},
        )


def remove_defaults(apps, schema_editor):
    SchedulerConfig = apps.get_model("jobs", "SchedulerConfig")
    for tier, job_type, *_ in DEFAULTS:
        SchedulerConfig.objects.filter(tier=tier, job_type=job_type).delete()


class Migration(migrations.Migration):
    dependencies = [("jobs", "0002_schedules")]

    operations = [migrations.RunPython(create_defaults, remove_defaults)]
