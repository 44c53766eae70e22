"""Thin receivers: the job system's events and resource changes become notifications and events.

Resource changes that bypass model signals (bulk_create, queryset updates) are reported by
their writers with `notifications.events.resource_changed`.
"""

from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver

from jobs.hooks import monitor_alert, run_failed, run_transitioned, schedules_written
from jobs.models import Schedule
from notifications.events import event_subscribers_forget, job_events_emit, resource_changed
from notifications.kinds import JOBS_FAILED, JOBS_MONITOR
from notifications.models import WebhookEndpoint
from notifications.services import notify_staff
from reports.models import Report
from scanners.darkwatch.models import Alert
from scanners.hometitle.models import TitleChange
from scanners.removebrokers.models import RemovalRequest

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


# --- job and resource events (notifications/events.py) ---------------------------------------


@receiver(run_transitioned, dispatch_uid="notifications.run_transitioned")
def job_event(sender, run_id, status, job_type="", **kwargs):
    job_events_emit(run_id, status, job_type)


@receiver(schedules_written, dispatch_uid="notifications.schedules_written")
def schedule_events(sender, created, updated, **kwargs):
    resource_changed("schedule", "created", created)
    resource_changed("schedule", "updated", updated)


@receiver(post_save, sender=WebhookEndpoint, dispatch_uid="notifications.endpoint_saved")
@receiver(post_delete, sender=WebhookEndpoint, dispatch_uid="notifications.endpoint_deleted")
def endpoint_changed(sender, **kwargs):
    event_subscribers_forget()


def _resource_receivers(resource: str, model) -> None:
    def saved(sender, instance, created, raw=False, **kwargs):
        if not raw:  # loaddata writes fixtures, not changes anybody made
            resource_changed(resource, "created" if created else "updated", [instance.pk])

    def deleting(sender, instance, **kwargs):
        resource_changed(resource, "deleted", [instance.pk])  # rendered now, while its relations exist

    post_save.connect(saved, sender=model, weak=False, dispatch_uid=f"notifications.{resource}_saved")
    pre_delete.connect(deleting, sender=model, weak=False, dispatch_uid=f"notifications.{resource}_deleted")


_resource_receivers("alert", Alert)
_resource_receivers("title_change", TitleChange)
_resource_receivers("removal_request", RemovalRequest)
_resource_receivers("report", Report)
_resource_receivers("schedule", Schedule)
