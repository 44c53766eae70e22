"""django-rq's dashboard, mounted read-only and behind its own permission, at both its doors.

django-rq serves its pages twice: where kordant/urls.py includes them (`/admin/rq/`) and
inside the admin (`/admin/django_rq/dashboard/`), both open to any staff member, and both
with buttons that delete jobs, empty queues, requeue and clear registries straight in Redis.
Those bypass the JobRun rows: a deleted job leaves its run `queued` until the recovery pass
pushes it again, a requeued one runs a run the database says is finished. So here:

- every page asks `may_view_rq_dashboard` (django-rq's own "Access admin page" permission,
  which the operators group has; superusers have every permission);
- only the pages that show something answer, and only to GET/HEAD; every other view,
  including any a later django-rq adds, answers 403 and points to the run's own page,
  whose Cancel / Retry / Run again go through jobs.services and leave an event.
"""

from __future__ import annotations

import uuid
from functools import wraps

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseForbidden
from django.urls import URLPattern, reverse
from django.utils.html import format_html
from django_rq.admin import QueueAdmin
from django_rq.models import Dashboard
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

from jobs.operators import is_staff_account, may_view_rq_dashboard

# The views that only show something (django-rq's URL names, without a prefix). Anything else is refused.
READ_ONLY_VIEWS = frozenset(
    {
        "home",
        "home_json",
        "metrics",
        "jobs",
        "queue_details",
        "finished_jobs",
        "failed_jobs",
        "scheduled_jobs",
        "started_jobs",
        "deferred_jobs",
        "job_detail",
        "result_detail",
        "workers",
        "worker_details",
        "scheduler_jobs",
        "cron_scheduler_detail",
        "cron_job_detail",
        "dashboard_changelist",  # the admin door's own entry: it shows the same page as "home"
    }
)
SAFE_METHODS = ("GET", "HEAD")


def refused(request, job_id: str | None = None):
    """403 for a django-rq action that would change Redis behind the runs' backs, with the way to do it here."""
    try:
        target = reverse("admin:jobs_jobrun_change", args=[uuid.UUID(str(job_id))]) if job_id else None
    except ValueError:
        target = None
    target = target or reverse("admin:jobs_jobrun_changelist")
    return HttpResponseForbidden(
        format_html(
            "<!doctype html><title>Switched off</title><h1>Switched off here</h1>"
            "<p>django-rq's dashboard is read-only in Kordant: deleting, emptying, requeueing or clearing jobs "
            "straight in Redis would lose runs or run them twice, with nothing in their history.</p>"
            '<p>Cancel, retry or run again from the run\'s own page: <a href="{}">{}</a>. '
            "Pause a queue from the jobs dashboard.</p>",
            target,
            target,
        )
    )


def guarded(pattern: URLPattern, prefix: str = "") -> URLPattern:
    """The same URL, answering only to may_view_rq_dashboard, and only for a read-only view read with GET."""
    view = pattern.callback
    read_only = (pattern.name or "").removeprefix(prefix) in READ_ONLY_VIEWS

    @wraps(view)
    def guard(request, *args, **kwargs):
        if not is_staff_account(request.user):
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not may_view_rq_dashboard(request.user):
            raise PermissionDenied
        if not read_only or request.method not in SAFE_METHODS:
            return refused(request, kwargs.get("job_id"))
        return view(request, *args, **kwargs)

    return URLPattern(pattern.pattern, guard, pattern.default_args, pattern.name)


def urlpatterns() -> list[URLPattern]:
    """django-rq's pages for `include((urlpatterns(), "django_rq"))`, each one guarded."""
    return [guarded(pattern) for pattern in get_api_urlpatterns() + get_admin_urlpatterns()]


class GuardedDashboardAdmin(QueueAdmin):
    """django-rq's admin entry (`/admin/django_rq/dashboard/...`) behind the same guard."""

    def has_module_permission(self, request) -> bool:
        return may_view_rq_dashboard(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return may_view_rq_dashboard(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        return [guarded(pattern, prefix="django_rq_") for pattern in super().get_urls()]


def admin_register(site=admin.site) -> None:
    """Put the guarded entry in place of django-rq's own (its admin module registers first: INSTALLED_APPS order)."""
    if site.is_registered(Dashboard):
        site.unregister(Dashboard)
    site.register(Dashboard, GuardedDashboardAdmin)
