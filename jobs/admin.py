"""The operator console: runs, schedules and the tier table, plus the dashboard, enqueue page and queue control.

Each action is one line calling a service. Who may do what:
- view permissions (the "operators" group has them all): look at everything;
- `jobs.trigger_jobrun` (operators too): enqueue, retry, cancel, run again, run now, pause queues;
- `jobs.schedulers` (superusers, or whoever is given it): edit the tier table (SchedulerConfig),
  pause and resume all scheduling;
- the model's own permissions: add, edit, enable, disable and delete periodic jobs
  (jobs/admin_periodic.py).
Every action is written to the admin log; runs also record it in their events.
"""

from __future__ import annotations

from datetime import UTC
from functools import cached_property

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from jobs import admin_pages, rq_dashboard
from jobs.cron import cron_check, cron_describe, get_zone, next_runs, spread_cron
from jobs.errors import JobError, NextRunUnknown
from jobs.models import (
    SCHEDULE_STATE_FILTERS,
    JobEvent,
    JobRun,
    Schedule,
    SchedulerConfig,
    ScheduleState,
)
from jobs.operators import may_edit_scheduler_configs, may_trigger_runs
from jobs.registry import QUEUES, registry
from jobs.scheduling import (
    schedule_set_enabled,
    schedule_trigger_now,
    scheduler_config_set_enabled,
    scheduler_config_trigger_count,
    scheduler_config_trigger_now,
)
from jobs.services import job_run_cancel, job_run_copy, job_run_retry
from kordant.audit import ADDITION, admin_log

rq_dashboard.admin_register()  # django-rq's own admin entry, read-only and behind its permission

STATUS_COLOURS = {
    "pending": "#868e96",
    "queued": "#1971c2",
    "running": "#e67700",
    "retrying": "#d9480f",
    "completed": "#2b8a3e",
    "failed": "#c92a2a",
    "cancelled": "#495057",
    "skipped": "#adb5bd",
}


def status_badge(status: str) -> str:
    if not status:
        return "–"
    return format_html(
        '<span class="kj-badge kj-{}" style="background:{};color:#fff;padding:1px 7px;border-radius:8px;'
        'font-size:11px;white-space:nowrap">{}</span>',
        status,
        STATUS_COLOURS.get(status, "#868e96"),
        status,
    )


def format_duration(delta) -> str:
    if delta is None:
        return "–"
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def time_cell(when, zone=UTC) -> str:
    """A time short enough for a list column, always with its zone; the full time (and UTC) on hover."""
    if when is None:
        return "–"
    local = when.astimezone(zone)
    full = f"{local:%Y-%m-%d %H:%M:%S %Z}" + ("" if zone is UTC else f" ({when.astimezone(UTC):%Y-%m-%d %H:%M} UTC)")
    return format_html(
        '<span class="kj-time" style="white-space:nowrap" title="{}">{}</span>', full, f"{local:%Y-%m-%d %H:%M %Z}"
    )


def next_run_cell(when, zone_name: str) -> str:
    """A schedule's next run on its own clock (the zone's abbreviation); the zone's name and UTC on hover."""
    if when is None:
        return "–"
    local = when.astimezone(get_zone(zone_name))
    return format_html(
        '<span class="kj-time" style="white-space:nowrap" title="{} · {}">{}</span>',
        zone_name,
        f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        f"{local:%Y-%m-%d %H:%M %Z}",
    )


def last_run_cell(schedule) -> str:
    """A schedule's last run, linked; "–" before its first."""
    if schedule is None or not schedule.last_run_id:
        return "–"
    # Formatted before format_html: it escapes its arguments first, and a SafeString takes no date format.
    when = f"{schedule.last_run_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if schedule.last_run_at else "run"
    return format_html('<a href="{}">{}</a>', reverse("admin:jobs_jobrun_change", args=[schedule.last_run_id]), when)


def state_cell(schedule) -> str:
    """Active in plain words; anything else in bold, with why on hover."""
    state = ScheduleState(schedule.state)
    if state == ScheduleState.ACTIVE:
        return state.label
    return format_html('<span title="{}"><strong>{}</strong></span>', schedule.state_reason, state.label)


def timing_cell(cron: str) -> str:
    """The cron in words, the expression on hover."""
    return format_html('<span title="{}">{}</span>', cron, cron_describe(cron))


def next_runs_html(cron: str, tz: str, intro: str, count: int = 5) -> str:
    """The next runs of a timing, each on its own clock and in UTC; "Never runs" rather than an error."""
    try:
        runs = next_runs(cron, tz, timezone.now(), count)
    except NextRunUnknown as exc:  # written past validation: say so rather than fail the page
        return format_html("<p><strong>Never runs</strong> (<code>{}</code>): {}</p>", cron, exc)
    zone = get_zone(tz)
    rows = format_html_join(
        "",
        "<li>{} <small>({})</small></li>",
        ((f"{r.astimezone(zone):%a %Y-%m-%d %H:%M %Z}", f"{r:%Y-%m-%d %H:%M} UTC") for r in runs),
    )
    return format_html('<p>{} ({}, <code>{}</code>):</p><ol class="kj-preview">{}</ol>', intro, tz, cron, rows)


# Tabular inlines print each row's own name above it (Django's "original" line): the timeline and the
# schedule table say what each row is in their columns already. Inlines with this class hide it.
PLAIN_ROWS_CSS = {"all": ("jobs/plain-rows.css",)}


def runs_started(count: int) -> str:
    return f"Started {count} run{'' if count == 1 else 's'}."


def started(runs: list) -> str:
    return runs_started(len(runs))


class OperatorActionsMixin:
    """Permissions the actions ask for (the decisions the API asks too), and one way to apply a service."""

    def has_trigger_permission(self, request) -> bool:
        return may_trigger_runs(request.user)

    def has_schedulers_permission(self, request) -> bool:
        return may_edit_scheduler_configs(request.user)

    def apply(self, request, queryset, service, done: str, said=None) -> list:
        """`service(obj)` for each selected row: log it, report what worked and what was refused; return the results.

        The message reads "<n> <objects> <done>." unless `said(results)` words it (None: no message).
        """
        results, refused = [], []
        for obj in queryset:
            try:
                results.append(service(obj))
            except (JobError, ValueError) as exc:
                refused.append(str(exc))
                continue
            self.log_change(request, obj, f"{done.capitalize()} from the admin.")
        if results and said is not None:
            if message := said(results):
                self.message_user(request, message, messages.SUCCESS)
        elif results:
            noun = self.opts.verbose_name if len(results) == 1 else self.opts.verbose_name_plural
            self.message_user(request, f"{len(results)} {noun} {done}.", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)
        return results


# --- runs ------------------------------------------------------------------------------


class EstimatedCountPaginator(Paginator):
    """The unfiltered list of a big table counts with PostgreSQL's own estimate, not COUNT(*).

    COUNT(*) over a million runs costs more than the rest of the page together. Any
    filter or search, a small table, and SQLite count exactly.
    """

    EXACT_BELOW = 10_000

    @cached_property
    def count(self):
        queryset = self.object_list
        if connection.vendor != "postgresql" or queryset.query.where:
            return super().count
        table = connection.ops.quote_name(queryset.model._meta.db_table)
        with connection.cursor() as cursor:
            # One query either way, so the page's query count does not depend on the table's size.
            cursor.execute(
                f"SELECT CASE WHEN reltuples >= %s THEN reltuples::bigint ELSE (SELECT COUNT(*) FROM {table}) END "
                "FROM pg_class WHERE oid = %s::regclass",
                [self.EXACT_BELOW, queryset.model._meta.db_table],
            )
            return cursor.fetchone()[0]


class JobTypeFilter(admin.SimpleListFilter):
    """The declared job types: no DISTINCT over millions of runs to build the sidebar."""

    title = "job type"
    parameter_name = "job_type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in registry.names()]

    def queryset(self, request, queryset):
        return queryset.filter(job_type=self.value()) if self.value() else queryset


class QueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [(name, name) for name in QUEUES]

    def queryset(self, request, queryset):
        return queryset.filter(queue=self.value()) if self.value() else queryset


class JobEventInline(admin.TabularInline):
    """The run's timeline: every state change, oldest first."""

    model = JobEvent
    extra = 0
    can_delete = False
    fields = ("when", "event_status", "attempt", "worker", "message")
    readonly_fields = fields
    verbose_name_plural = "timeline"
    classes = ("kj-plain-rows",)

    class Media:
        css = PLAIN_ROWS_CSS

    @admin.display(description="at (UTC)")
    def when(self, event):
        return f"{event.at.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}"[:-3]

    @admin.display(description="status")
    def event_status(self, event):
        return status_badge(event.status)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(JobRun)
class JobRunAdmin(OperatorActionsMixin, admin.ModelAdmin):
    list_display = (
        "short_id",
        "job_type_cell",
        "status_badge",
        "progress_bar",
        "attempts",
        "trigger",
        "queue",
        "duration",
        "created",
        "user",
    )
    list_display_links = ("short_id",)
    # Dates as a filter, not date_hierarchy: the hierarchy asks for the distinct months of
    # the whole table on every page (400 ms with a million runs); the filter asks nothing.
    list_filter = ("status", JobTypeFilter, "trigger", QueueFilter, ("created_at", admin.DateFieldListFilter))
    search_fields = ("=id", "job_type", "=dedupe_key")
    list_select_related = ("user",)
    list_per_page = 50
    paginator = EstimatedCountPaginator
    show_full_result_count = False  # a COUNT(*) over millions of runs on every page is not worth it
    inlines = [JobEventInline]
    actions = ["retry", "cancel", "run_again"]
    change_form_template = (
        "admin/jobs/jobrun_change_form.html"  # not the auto-found path: a stock admin of JobRun keeps the stock page
    )
    change_list_template = "admin/jobs/jobrun_change_list.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "job_type",
                    "status_badge",
                    "waiting_for_limit",
                    "progress_bar",
                    "attempts",
                    "trigger",
                    "queue",
                    "links",
                    "worker_name",
                )
            },
        ),
        (
            "Timing",
            {
                "fields": (
                    "created_at",
                    "scheduled_for",
                    "planned_for",
                    "enqueued_at",
                    "started_at",
                    "finished_at",
                    "duration",
                    "next_attempt_at",
                )
            },
        ),
        ("Payload and result", {"fields": ("payload_pretty", "result_pretty")}),
        (
            "Error",
            {"fields": ("error_type", "error_pretty", "traceback_pretty", "cancel_requested_at", "cancel_reason")},
        ),
        (
            "Keys and limits",
            {
                "classes": ("collapse",),
                "fields": ("dedupe_key", "singleton_key", "supersede_key", "timeout", "max_attempts"),
            },
        ),
    )
    readonly_fields = (
        "id", "job_type", "status_badge", "waiting_for_limit", "progress_bar", "attempts", "trigger", "queue", "links",
        "worker_name",
        "created_at", "scheduled_for", "planned_for", "enqueued_at", "started_at", "finished_at", "duration",
        "next_attempt_at", "payload_pretty", "result_pretty", "error_type", "error_pretty", "traceback_pretty",
        "cancel_requested_at", "cancel_reason", "dedupe_key", "singleton_key", "supersede_key", "timeout",
        "max_attempts",
    )  # fmt: skip

    def has_add_permission(self, request):
        return False  # runs are created by enqueue(), with validation: the enqueue page, not a bare form

    def has_change_permission(self, request, obj=None):
        return False  # a run changes only through its lifecycle and the actions

    # --- columns ---

    @admin.display(description="run", ordering="id")
    def short_id(self, run):
        return str(run.pk)[:8]

    @admin.display(description="status", ordering="status")
    @admin.display(description="job type", ordering="job_type")
    def job_type_cell(self, run):
        # Long dotted names (notifications.send_batch) may break after a dot, so the list fits 1366 px.
        return format_html_join(mark_safe(".<wbr>"), "{}", ((part,) for part in run.job_type.split(".")))

    def status_badge(self, run):
        waiting = run.waiting_for_limit
        if not waiting:
            return status_badge(run.status)
        # Still queued: its job type's limits hold it back (jobs/limits.py); the reason is on hover.
        return format_html(
            '{} <small class="kj-waiting-limit" title="{}">waiting for its limit</small>',
            status_badge(run.status),
            waiting,
        )

    @admin.display(description="waiting for its limit")
    def waiting_for_limit(self, run):
        return run.waiting_for_limit or "–"

    @admin.display(description="progress")
    def progress_bar(self, run):
        percent = max(0, min(100, round(run.progress or 0)))
        # The message is on hover and on the run's page: in the list it made every row three lines tall.
        return format_html(
            '<span style="white-space:nowrap"><span class="kj-progress" title="{}% {}" '
            'style="display:inline-block;width:40px;height:8px;'
            'background:#e9ecef;border-radius:4px;vertical-align:middle"><span style="display:block;width:{}%;'
            'height:8px;background:#1c7ed6;border-radius:4px"></span></span> <small>{}%</small></span>',
            percent,
            run.progress_message,
            percent,
            percent,
        )

    @admin.display(description="attempts", ordering="attempt")
    def attempts(self, run):
        return f"{run.attempt} of {run.max_attempts}"

    @admin.display(description="duration")
    def duration(self, run):
        return format_duration(run.duration)

    @admin.display(description="created", ordering="created_at")
    def created(self, run):
        return time_cell(run.created_at)

    @admin.display(description="links")
    def links(self, run):
        items = []
        periodic = (
            Schedule.objects.filter(pk=run.schedule_id).values_list("periodic_job_id", "periodic_job__name").first()
            if run.schedule_id
            else None
        )
        if periodic and periodic[0]:
            # A periodic job's run: its job is what an operator opens (its schedule is shown there).
            items.append((reverse("admin:jobs_periodicjob_change", args=[periodic[0]]), f"periodic job {periodic[1]}"))
        elif run.schedule_id:
            items.append(
                (reverse("admin:jobs_schedule_change", args=[run.schedule_id]), f"schedule #{run.schedule_id}")
            )
        if run.subscription_id:
            items.append(
                (
                    reverse("admin:kordant_subscription_change", args=[run.subscription_id]),
                    f"subscription #{run.subscription_id}",
                )
            )
        if run.user_id:
            items.append((reverse("admin:auth_user_change", args=[run.user_id]), f"user {run.user}"))
        return format_html_join(" · ", '<a href="{}">{}</a>', items) if items else "–"

    @admin.display(description="payload")
    def payload_pretty(self, run):
        return admin_pages.pretty_json(run.payload)

    @admin.display(description="result")
    def result_pretty(self, run):
        return admin_pages.pretty_json(run.result) if run.result is not None else "–"

    @admin.display(description="error")
    def error_pretty(self, run):
        return (
            format_html('<pre class="kj-error" style="white-space:pre-wrap">{}</pre>', run.error) if run.error else "–"
        )

    @admin.display(description="traceback")
    def traceback_pretty(self, run):
        if not run.traceback:
            return "–"
        return format_html(
            '<pre class="kj-traceback" style="white-space:pre;overflow:auto;max-height:30em;font-size:11px">{}</pre>',
            run.traceback,
        )

    # --- actions ---

    @admin.action(description="Retry the selected failed or cancelled runs", permissions=["trigger"])
    def retry(self, request, queryset):
        self.apply(request, queryset, lambda run: job_run_retry(run, user=request.user), "retried")

    @admin.action(description="Cancel the selected runs", permissions=["trigger"])
    def cancel(self, request, queryset):
        self.apply(
            request, queryset, lambda run: job_run_cancel(run, reason=f"cancelled by {request.user}"), "cancelled"
        )

    @admin.action(description="Run the selected runs again (a copy of each)", permissions=["trigger"])
    def run_again(self, request, queryset):
        self.apply(request, queryset, lambda run: job_run_copy(run, user=request.user), "copied")

    # --- pages ---

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("dashboard/", wrap(self.dashboard_view), name="jobs_dashboard"),
            path("enqueue/", wrap(self.enqueue_view), name="jobs_enqueue"),
            path("queues/<str:name>/<str:operation>/", wrap(self.queue_view), name="jobs_queue_control"),
            path("<uuid:object_id>/do/<str:operation>/", wrap(self.run_operation_view), name="jobs_jobrun_operation"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return admin_pages.dashboard(self, request)

    def enqueue_view(self, request):
        if not self.has_trigger_permission(request):
            raise PermissionDenied
        return admin_pages.enqueue_page(self, request)

    def queue_view(self, request, name, operation):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_trigger_permission(request):
            raise PermissionDenied
        return admin_pages.queue_control(self, request, name, operation)

    def run_operation_view(self, request, object_id, operation):
        """The change page's buttons: the same services as the changelist's actions, for one run."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        # Acting on a run means seeing it too, as the API asks (its runs queryset, then the trigger permission).
        if not (self.has_trigger_permission(request) and self.has_view_permission(request)):
            raise PermissionDenied
        run = self.get_object(request, str(object_id))
        if run is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, str(object_id))
        services = {
            "retry": (lambda r: job_run_retry(r, user=request.user), "retried"),
            "cancel": (lambda r: job_run_cancel(r, reason=f"cancelled by {request.user}"), "cancelled"),
            "run_again": (lambda r: job_run_copy(r, user=request.user), "copied"),
        }
        if operation not in services:
            raise PermissionDenied
        results = self.apply(request, [run], *services[operation])
        target = results[0] if operation == "run_again" and results else run
        return HttpResponseRedirect(reverse("admin:jobs_jobrun_change", args=[target.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "can_trigger": self.has_trigger_permission(request),
            # The page reloads itself until the run ends, so an operator watches it finish.
            "auto_refresh": run is not None and not run.is_final,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_trigger": self.has_trigger_permission(request)}
        return super().changelist_view(request, extra_context)

    def log_enqueued(self, request, run) -> None:
        admin_log(request.user, run, ADDITION, "Enqueued from the admin.")


# --- schedules -------------------------------------------------------------------------


class ScheduleStateFilter(admin.SimpleListFilter):
    """Runs, paused, waiting for its disabled config, or broken (no next run can be computed)."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return ScheduleState.choices

    def queryset(self, request, queryset):
        if self.value() in SCHEDULE_STATE_FILTERS:
            return queryset.filter(SCHEDULE_STATE_FILTERS[self.value()])
        return queryset


@admin.register(Schedule)
class ScheduleAdmin(OperatorActionsMixin, admin.ModelAdmin):
    # Fits 1366 px: the tier is in the subscription's name, and the zone is on the next run's time
    # (its abbreviation; the zone's name and the UTC time on hover, and on the schedule's page).
    list_display = (
        "id",
        "subscriber",
        "job_type",
        "timing",
        "enabled",
        "state",
        "next_run",
        "last_run_link",
        "last_outcome",
        "run_count",
    )
    list_filter = (ScheduleStateFilter, "enabled", "config__tier", "config__job_type", "last_status")
    list_select_related = ("subscription__user", "config")
    search_fields = ("=subscription__id", "subscription__user__username", "subscription__user__email")
    date_hierarchy = "created_at"
    raw_id_fields = ("subscription", "last_run")
    show_full_result_count = False
    actions = ["enable", "disable", "run_now"]
    fields = (
        "subscription", "config", "enabled", "state", "cron_expression", "timing", "timezone", "next_run_local",
        "next_run_utc", "last_run_link", "last_outcome", "run_count", "created_at", "updated_at",
    )  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        # Timing comes from the config and the subscription; sync_schedules would undo a hand edit.
        return [name for name in self.fields if name != "enabled"]

    def get_queryset(self, request):
        # Subscriptions' schedules. A periodic job's one schedule is shown, paused and run on
        # the periodic job's own page (jobs/admin_periodic.py): one switch per job, not two.
        return super().get_queryset(request).filter(periodic_job__isnull=True)

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        schedule_set_enabled(obj, obj.enabled)

    @admin.display(description="job type", ordering="config__job_type")
    def job_type(self, schedule):
        return schedule.config.job_type

    @admin.display(description="state")
    def state(self, schedule):
        return state_cell(schedule)

    @admin.display(description="tier", ordering="config__tier")
    def tier(self, schedule):
        return schedule.config.get_tier_display()

    @admin.display(description="runs")
    def timing(self, schedule):
        return timing_cell(schedule.cron_expression)

    @admin.display(description="subscriber", ordering="subscription__user__username")
    def subscriber(self, schedule):
        # The username, not the subscription's long name: its tier is a filter, and the page has the rest.
        return schedule.subscription.user.get_username()

    @admin.display(description="next run", ordering="next_run_at")
    def next_run(self, schedule):
        return next_run_cell(schedule.next_run_at, schedule.timezone)

    @admin.display(description="next run (local)", ordering="next_run_at")
    def next_run_local(self, schedule):
        if schedule.next_run_at is None:
            return "–"
        local = schedule.next_run_at.astimezone(get_zone(schedule.timezone))
        return f"{local:%Y-%m-%d %H:%M %Z}"

    @admin.display(description="next run (UTC)", ordering="next_run_at")
    def next_run_utc(self, schedule):
        return f"{schedule.next_run_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if schedule.next_run_at else "–"

    @admin.display(description="last run (UTC)", ordering="last_run_at")
    def last_run_link(self, schedule):
        return last_run_cell(schedule)

    @admin.display(description="outcome", ordering="last_status")
    def last_outcome(self, schedule):
        return status_badge(schedule.last_status)

    @admin.action(description="Enable the selected schedules", permissions=["change"])
    def enable(self, request, queryset):
        self.apply(request, queryset, lambda schedule: schedule_set_enabled(schedule, True), "enabled")

    @admin.action(description="Disable the selected schedules", permissions=["change"])
    def disable(self, request, queryset):
        self.apply(request, queryset, lambda schedule: schedule_set_enabled(schedule, False), "disabled")

    @admin.action(description="Run the selected schedules now (manual runs; timing unchanged)", permissions=["trigger"])
    def run_now(self, request, queryset):
        self.apply(
            request,
            queryset,
            lambda schedule: schedule_trigger_now(schedule, user=request.user),
            "run now",
            said=started,
        )


# --- the tier table --------------------------------------------------------------------


@admin.register(SchedulerConfig)
class SchedulerConfigAdmin(OperatorActionsMixin, admin.ModelAdmin):
    """Operators see the tier table; `jobs.schedulers` holders edit it. Saving re-syncs the tier (jobs/signals.py)."""

    list_display = (
        "tier",
        "job_type",
        "timing",
        "description_of_timing",
        "enabled",
        "priority",
        "overlap",
        "run_on_change",
        "schedule_count",
    )
    list_filter = ("tier", "enabled", "job_type")
    search_fields = ("job_type", "description")
    date_hierarchy = "updated_at"
    actions = ["enable", "disable", "run_for_tier"]
    readonly_fields = ("description_of_timing", "next_runs_preview", "schedule_count", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("tier", "job_type", "enabled", "description")}),
        (
            "Timing",
            {
                "fields": ("frequency", "cron_expression", "description_of_timing", "next_runs_preview"),
                "description": "A named frequency (spread over the period per subscription) or a five-field cron "
                "expression on each subscriber's clock: one of the two.",
            },
        ),
        ("Running", {"fields": ("priority", "overlap", "run_on_change")}),
        ("Audit", {"fields": ("schedule_count", "created_at", "updated_at")}),
    )

    def get_form(self, request, obj=None, **kwargs):
        from jobs.admin_forms import SchedulerConfigForm

        kwargs["form"] = SchedulerConfigForm
        return super().get_form(request, obj, **kwargs)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(schedules_n=Count("schedules"))

    # A change to any of these re-times (or starts, or stops) a whole tier's schedules.
    TIMING_FIELDS = ("tier", "job_type", "frequency", "cron_expression", "enabled")
    CONFIRM_TIMING = "_confirm_timing"

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A valid save that changes the timing asks first, showing the load forecast now and after it."""
        if request.method == "POST" and self.CONFIRM_TIMING not in request.POST:
            confirmation = self._timing_confirmation(request, object_id)
            if confirmation is not None:
                return confirmation
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _timing_confirmation(self, request, object_id):
        from django.contrib.admin.utils import unquote

        from jobs.forecast import scheduler_config_forecast_change

        config = self.get_object(request, unquote(object_id)) if object_id else None
        if object_id and config is None:
            return None  # the admin's own "does not exist" answer
        allowed = self.has_change_permission(request, config) if config else self.has_add_permission(request)
        if not allowed:
            return None  # the admin's own 403
        form = self.get_form(request, config, change=config is not None)(
            request.POST, request.FILES, instance=SchedulerConfig.objects.get(pk=config.pk) if config else None
        )
        if not form.is_valid() or (config and not set(form.changed_data) & set(self.TIMING_FIELDS)):
            return None  # errors at their fields, or nothing re-timed: the admin saves as usual
        proposed = form.save(commit=False)  # not saved: the forecast says what saving would do
        before, after = scheduler_config_forecast_change(config, proposed)
        return TemplateResponse(
            request,
            "admin/jobs/schedulerconfig/confirm_timing.html",
            {
                **self.admin_site.each_context(request),
                "title": "Change the tier's timing?",
                "opts": self.opts,
                "original": config,
                "proposed": proposed,
                "changed": [name for name in self.TIMING_FIELDS if name in form.changed_data],
                "change_figures": admin_pages.forecast_change_figures(before, after),
                "posted": [
                    (name, value)
                    for name, values in request.POST.lists()
                    if name != "csrfmiddlewaretoken"
                    for value in values
                ],
                "confirm_name": self.CONFIRM_TIMING,
            },
        )

    def has_add_permission(self, request):
        return self.has_schedulers_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_schedulers_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_schedulers_permission(request)

    @admin.display(description="timing")
    def timing(self, config):
        return config.frequency or config.cron_expression

    @admin.display(description="in words")
    def description_of_timing(self, config):
        if config.frequency:
            return f"{config.get_frequency_display()}, at a stable time of the period per subscription"
        if not config.cron_expression:
            return "–"
        try:
            cron_check(config.cron_expression)
        except NextRunUnknown as exc:  # written past validation
            return f"Never runs: {exc}"
        return cron_describe(config.cron_expression)

    @admin.display(description="next 5 runs")
    def next_runs_preview(self, config):
        if not config.pk or not (config.frequency or config.cron_expression):
            return "Saved configs show their next runs here."
        example = config.schedules.select_related("subscription").order_by("pk").first()
        if example is not None:
            cron, tz, whose = example.cron_expression, example.timezone, f"subscription #{example.subscription_id}"
        elif config.frequency:
            cron, tz, whose = spread_cron(config.frequency, 1, config.job_type), "UTC", "a subscription (#1)"
        else:
            cron, tz, whose = config.cron_expression, "UTC", "a subscriber in UTC"
        return next_runs_html(cron, tz, f"For {whose}")

    @admin.display(description="schedules", ordering="schedules_n")
    def schedule_count(self, config):
        return config.schedules_n if hasattr(config, "schedules_n") else config.schedules.count()

    @admin.action(description="Enable the selected configs", permissions=["schedulers"])
    def enable(self, request, queryset):
        self.apply(request, queryset, lambda config: scheduler_config_set_enabled(config, True), "enabled")

    @admin.action(description="Disable the selected configs", permissions=["schedulers"])
    def disable(self, request, queryset):
        self.apply(request, queryset, lambda config: scheduler_config_set_enabled(config, False), "disabled")

    @admin.action(description="Run now for the whole tier (asks first)", permissions=["trigger"])
    def run_for_tier(self, request, queryset):
        if request.POST.get("confirm") != "yes":
            return self.confirm_run_for_tier(request, queryset)
        self.apply(
            request,
            queryset,
            lambda config: scheduler_config_trigger_now(config, user=request.user),
            "run now",
            said=lambda counts: runs_started(sum(counts)),
        )
        return None

    def confirm_run_for_tier(self, request, queryset):
        configs = [(config, scheduler_config_trigger_count(config)) for config in queryset]
        return TemplateResponse(
            request,
            "admin/jobs/schedulerconfig/confirm_run_for_tier.html",
            {
                **self.admin_site.each_context(request),
                "title": "Run now for the whole tier?",
                "opts": self.opts,
                "configs": configs,
                "total": sum(count for _, count in configs),
                "selected": [config.pk for config, _ in configs],
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )


# Periodic jobs and the scheduling switch live in their own module; registering them here
# keeps one admin module for Django's autodiscovery.
from jobs import admin_periodic  # noqa: E402, F401
