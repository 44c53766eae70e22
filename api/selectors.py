"""Reads for the API: what each user may see, and the dashboard numbers.

One rule, applied here for every resource: staff see everything; anyone else sees only
objects of their own subscriptions (a run also when they enqueued it). Views build on
these querysets, so someone else's object is simply not found (404, never 403).
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Max, Q, QuerySet

from jobs import selectors as job_selectors
from jobs.models import JobRun, Schedule, SchedulerConfig
from kordant.models import Subscription
from reports.models import Report
from scanners.darkwatch.models import Alert
from scanners.hometitle.models import TitleChange
from scanners.removebrokers.models import RemovalRequest
from scanners.voiceprint.models import AnalysisJob


def _own(queryset: QuerySet, user, owner_path: str) -> QuerySet:
    if not user.is_authenticated:
        return queryset.none()
    return queryset if user.is_staff else queryset.filter(**{owner_path: user})


def job_runs_visible(user) -> QuerySet[JobRun]:
    """Runs the user may see: their subscriptions' runs and runs they enqueued; staff: all."""
    runs = JobRun.objects.all()
    if not user.is_authenticated:
        return runs.none()
    if user.is_staff:
        return runs
    return runs.filter(Q(user=user) | Q(subscription__user=user))


def job_runs_visible_for_detail(user) -> QuerySet[JobRun]:
    """Visible runs with what a conditional GET needs: the newest event's id for the ETag."""
    return job_runs_visible(user).annotate(last_event_id=Max("events__id"))


def job_run_etag(run: JobRun) -> str:
    """Changes whenever the run's row or its event log does: every write bumps updated_at or adds an event."""
    return f'"{run.pk.hex}-{int(run.updated_at.timestamp() * 1_000_000):x}-{run.last_event_id or 0:x}"'


def schedules_visible(user) -> QuerySet[Schedule]:
    return _own(Schedule.objects.select_related("config"), user, "subscription__user").order_by("pk")


def scheduler_configs_all() -> QuerySet[SchedulerConfig]:
    return SchedulerConfig.objects.all()


def subscriptions_visible(user) -> QuerySet[Subscription]:
    return _own(Subscription.objects.all(), user, "user")


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
