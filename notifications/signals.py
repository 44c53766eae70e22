"""Thin receivers: the job system's events become notifications."""

from django.dispatch import receiver

from jobs.hooks import monitor_alert, run_failed
from notifications.kinds import JOBS_FAILED, JOBS_MONITOR
from notifications.services import notify_staff

SEND_JOBS = frozenset({"notifications.send", "notifications.send_batch"})


@receiver(run_failed, dispatch_uid="notifications.run_failed")
def tell_staff_a_run_failed(sender, run_id, job_type, error, **kwargs):
    # A notice that failed to go out must not beget another notice; the admin shows it.
    if job_type not in SEND_JOBS:
        notify_staff(
            JOBS_FAILED,
            {"job_run_id": str(run_id), "job_type": job_type, "error": error[:2000]},
            dedupe_key=f"jobs.failed:{run_id}",
        )


@receiver(monitor_alert, dispatch_uid="notifications.monitor_alert")
def tell_staff_about_a_monitor_alert(sender, check, summary, incident, **kwargs):
    notify_staff(JOBS_MONITOR, {"check": check, "summary": summary}, dedupe_key=f"jobs.monitor:{check}:{incident}")
