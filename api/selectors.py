"""Reads for the API: what each user may see, and the dashboard numbers.

One rule, applied here for every resource: staff with the model's view (or change)
permission see everything, as in the admin (jobs.operators.may_view_all); anyone else,
staff without it included, sees only objects of their own subscriptions (a run also when
they enqueued it). Views build on these querysets, so someone else's object is simply not
found (404, never 403).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import JSONField, Q, QuerySet

from jobs import selectors as job_selectors
from jobs.models import JobEvent, JobRun, PeriodicJob, Schedule, SchedulerConfig
from jobs.operators import may_view_all
from kordant.models import Subscription
from notifications.models import Channel, Notification, WebhookDelivery, WebhookEndpoint
from reports.models import Report
from scanners.darkwatch.models import Alert
from scanners.hometitle.models import TitleChange
from scanners.removebrokers.models import RemovalRequest
from scanners.voiceprint.models import AnalysisJob


def _own(queryset: QuerySet, user, owner_path: str) -> QuerySet:
    if not user.is_authenticated:
        return queryset.none()
    return queryset if may_view_all(user, queryset.model) else queryset.filter(**{owner_path: user})


def job_runs_visible(user) -> QuerySet[JobRun]:
    """Runs the user may see: their subscriptions' runs and runs they enqueued; staff: all."""
    runs = JobRun.objects.all()
    if not user.is_authenticated:
        return runs.none()
    if may_view_all(user, JobRun):
        return runs
    return runs.filter(Q(user=user) | Q(subscription__user=user))


def job_run_detail(user, run_id: uuid.UUID) -> JobRun | None:
    """A visible run with its event log as `run.event_log` (oldest first); None if not visible.

    This is what clients poll, so it is kept lean: the traceback (up to 20 kB) stays
    behind, events come as plain rows, and on PostgreSQL the run and its events are one
    statement (the ORM's two queries cost twice what the rest of the answer does)."""
    if not user.is_authenticated:
        return None
    if connection.vendor == "postgresql":
        return _job_run_detail_postgresql(user, run_id)
    run = job_runs_visible(user).defer("traceback").filter(pk=run_id).first()
    if run is not None:
        run.event_log = job_run_events(run.pk)
    return run


_DETAIL_FIELDS = [field for field in JobRun._meta.concrete_fields if field.attname != "traceback"]
_DETAIL_SQL = """
SELECT {columns},
       COALESCE((SELECT json_agg(json_build_object('id', e.id, 'at', e.at, 'status', e.status, 'attempt', e.attempt,
                                                   'worker', e.worker, 'message', e.message) ORDER BY e.at, e.id)
                   FROM {events} e WHERE e.job_run_id = r.id), '[]')
  FROM {runs} r
  {owner}
""".format(
    columns=", ".join(f'r."{field.column}"' for field in _DETAIL_FIELDS),
    events=JobEvent._meta.db_table,
    runs=JobRun._meta.db_table,
    owner="{owner}",
)
_STAFF_DETAIL_SQL = _DETAIL_SQL.format(owner="WHERE r.id = %s")
_OWNER_DETAIL_SQL = _DETAIL_SQL.format(
    owner=f"LEFT JOIN {Subscription._meta.db_table} s ON s.id = r.subscription_id "
    "WHERE r.id = %s AND (r.user_id = %s OR s.user_id = %s)"
)


def _job_run_detail_postgresql(user, run_id: uuid.UUID) -> JobRun | None:
    with connection.cursor() as cursor:
        if may_view_all(user, JobRun):
            cursor.execute(_STAFF_DETAIL_SQL, [run_id])
        else:
            cursor.execute(_OWNER_DETAIL_SQL, [run_id, user.pk, user.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    *values, events = row
    values = [
        field.from_db_value(value, None, connection) if isinstance(field, JSONField) else value
        for field, value in zip(_DETAIL_FIELDS, values, strict=True)
    ]
    run = JobRun.from_db(connection.alias, [field.attname for field in _DETAIL_FIELDS], values)
    log = json.loads(events) if isinstance(events, str) else events
    for event in log:
        event["at"] = datetime.fromisoformat(event["at"])
    run.event_log = log
    return run


def job_run_events(run_id) -> list[dict]:
    """A run's events, oldest first, as dicts (id, at, status, attempt, worker, message)."""
    return list(
        JobEvent.objects.filter(job_run_id=run_id)
        .order_by("at", "id")
        .values("id", "at", "status", "attempt", "worker", "message")
    )


def job_run_etag(run: JobRun) -> str:
    """Changes whenever the run's row or its event log does (a write bumps updated_at, or adds an event)."""
    last_event = run.event_log[-1]["id"] if run.event_log else 0
    return f'"{run.pk.hex}-{int(run.updated_at.timestamp() * 1_000_000):x}-{last_event:x}"'


def schedules_visible(user) -> QuerySet[Schedule]:
    # Tier schedules only: a periodic job's schedule row is shown (and managed) as the
    # periodic job itself, under /api/v1/periodic-jobs/.
    tier_schedules = Schedule.objects.filter(periodic_job__isnull=True).select_related("config")
    return _own(tier_schedules, user, "subscription__user").order_by("pk")


def periodic_jobs_visible(user) -> QuerySet[PeriodicJob]:
    """Periodic jobs the user may see: their own; staff who may view periodic jobs: all."""
    return _own(PeriodicJob.objects.select_related("schedule"), user, "owner")


def scheduler_configs_all() -> QuerySet[SchedulerConfig]:
    return SchedulerConfig.objects.all()


def subscriptions_visible(user) -> QuerySet[Subscription]:
    return _own(Subscription.objects.all(), user, "user")


def webhook_endpoints_visible(user) -> QuerySet[WebhookEndpoint]:
    return _own(WebhookEndpoint.objects.order_by("pk"), user, "owner")


def webhook_events_visible(user) -> QuerySet[Notification]:
    """Notifications sent to webhook endpoints (events): the endpoint's owner's, or all to staff."""
    events = Notification.objects.filter(channel=Channel.WEBHOOK).select_related("webhook_endpoint")
    return _own(events.order_by("-created_at", "-pk"), user, "webhook_endpoint__owner")


def webhook_deliveries_visible(user) -> QuerySet[WebhookDelivery]:
    deliveries = WebhookDelivery.objects.select_related("notification").order_by("-created_at", "-pk")
    return _own(deliveries, user, "endpoint__owner")


def alerts_visible(user) -> QuerySet[Alert]:
    alerts = Alert.objects.select_related("item", "breach").order_by("-first_seen", "-pk")
    return _own(alerts, user, "subscription__user")


def title_changes_visible(user) -> QuerySet[TitleChange]:
    changes = TitleChange.objects.select_related("property", "document").order_by("-detected_at", "-pk")
    return _own(changes, user, "property__subscription__user")


def removal_requests_visible(user) -> QuerySet[RemovalRequest]:
    requests = RemovalRequest.objects.select_related("broker").order_by("-created_at", "-pk")
    return _own(requests, user, "subscription__user")


def voice_analyses_visible(user) -> QuerySet[AnalysisJob]:
    analyses = AnalysisJob.objects.select_related("sample").order_by("-created_at", "-pk")
    return _own(analyses, user, "sample__subscription__user")


def reports_visible(user) -> QuerySet[Report]:
    return _own(Report.objects.all(), user, "subscription__user")


def stats_dashboard() -> dict:
    """The operators' dashboard numbers, from the job system's own selectors."""
    oldest = job_selectors.oldest_queued_age()
    return {
        "runs_by_status": job_selectors.job_run_counts_by_status(),
        "runs_by_status_24h": job_selectors.job_run_counts_by_status(since=timedelta(hours=24)),
        "runs_by_type_24h": job_selectors.job_run_counts_by_type(since=timedelta(hours=24)),
        "failure_rate_1h": job_selectors.job_run_failure_rate(),
        "queue_depths": job_selectors.queue_depths(),
        "oldest_queued_seconds": oldest.total_seconds() if oldest is not None else None,
        "scheduler": job_selectors.scheduler_heartbeat(),
        "duration_percentiles_24h": job_selectors.job_run_duration_percentiles(),
        "runs_per_hour": job_selectors.job_runs_per_hour(),
    }
