"""Thin receivers: the job system's events become notifications."""

from django.dispatch import receiver

from jobs.hooks import run_failed
from notifications.kinds import JOBS_FAILED
from notifications.services import notify_staff

SEND_JOB = "notifications.send"


@receiver(run_failed, dispatch_uid="notifications.run_failed")
def tell_staff_a_run_failed(sender, run_id, job_type, error, **kwargs):
    # A notice that failed to go out must not beget another notice; the admin shows it.
    if job_type != SEND_JOB:
        notify_staff(
            JOBS_FAILED,
            {"job_run_id": str(run_id), "job_type": job_type, "error": error[:2000]},
            dedupe_key=f"jobs.failed:{run_id}",
        )
