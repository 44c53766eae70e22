"""Periodic jobs in the operator console, and the switch that pauses all scheduling (issue 18).

Who may do what, as for schedules (jobs/admin.py's docstring): operators see periodic jobs
and run them now (`jobs.trigger_jobrun`); adding, editing, enabling, disabling and deleting
them takes the model's own permissions (superusers, or whoever is given them); pausing all
scheduling takes `jobs.schedulers`, as editing the tier table does. Every action and button
calls one service of jobs/periodic.py and is written to the admin log.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from jobs import admin_pages
from jobs.admin import (
    JobTypeFilter,
    OperatorActionsMixin,
    format_duration,
    last_run_cell,
    next_run_cell,
    next_runs_html,
    started,
    state_cell,
    status_badge,
    time_cell,
    timing_cell,
)
from jobs.admin_forms import JobTypeChoiceForm, PeriodicJobForm
from jobs.cron import cron_check, get_zone
from jobs.errors import NextRunUnknown
from jobs.forecast import periodic_job_forecast_change
from jobs.models import SCHEDULE_STATE_FILTERS, JobRun, PeriodicJob, Schedule, ScheduleState
from jobs.periodic import (
    PeriodicJobProtected,
    periodic_job_delete,
    periodic_job_save,
    periodic_job_set_enabled,
    periodic_job_trigger_now,
)

# The change page lists this many of a job's latest runs, and links the rest (the run list, filtered).
RUN_HISTORY = 20
# A change of these asks first, showing the timing (and the load forecast) before and after.
TIMING_FIELDS = ("frequency", "cron_expression", "timezone", "enabled")
BOOKKEEPING_FIELDS = (
    "builtin", "state", "next_run_local", "next_run_utc", "last_run_link", "last_outcome", "run_count",
    "created_at", "updated_at",
)  # fmt: skip


def schedule_of(job: PeriodicJob) -> Schedule | None:
    """The job's one schedule row (None only if something removed it behind the services' back)."""
    try:
        return job.schedule
    except Schedule.DoesNotExist:
        return None


class PeriodicJobStateFilter(admin.SimpleListFilter):
    """Runs, paused, or broken (no next run can be computed): the states schedules have."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [(value, label) for value, label in ScheduleState.choices if value != ScheduleState.WAITING]

    def queryset(self, request, queryset):
        if self.value() in SCHEDULE_STATE_FILTERS:
            return queryset.filter(schedule__in=Schedule.objects.filter(SCHEDULE_STATE_FILTERS[self.value()]))
        return queryset


class BuiltinFilter(admin.BooleanFieldListFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "built-in"


class OwnerFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        return [("none", "nobody (the system's and operators')"), ("customer", "a customer")]

    def queryset(self, request, queryset):
        if self.value() in ("none", "customer"):
            return queryset.filter(owner__isnull=self.value() == "none")
        return queryset


@admin.register(PeriodicJob)
class PeriodicJobAdmin(OperatorActionsMixin, admin.ModelAdmin):
    form = PeriodicJobForm
    # Ten columns, like the schedules' list, to fit 1366 px: the zone is on the next run's time.
    list_display = (
        "job",
        "owner_name",
        "timing",
        "next_run",
        "enabled",
        "state",
        "last_run_link",
        "last_outcome",
        "run_count",
    )
    list_filter = (PeriodicJobStateFilter, "enabled", JobTypeFilter, ("builtin", BuiltinFilter), OwnerFilter)
    list_select_related = ("schedule", "owner")
    search_fields = ("name",)
    raw_id_fields = ("owner",)  # a select of every customer would not do
    actions = ["run_now", "enable", "disable"]
    change_form_template = "admin/jobs/periodicjob/change_form.html"
    readonly_fields = (
        "payload_pretty", "timing_in_words", "next_runs_preview", "builtin", "state", "next_run_local",
        "next_run_utc", "last_run_link", "last_outcome", "run_count", "run_history", "created_at", "updated_at",
    )  # fmt: skip

    def get_fieldsets(self, request, obj=None):
        editable = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        main = ["name", "job_type", "owner", "enabled", "description"]
        if not editable:
            main.append("payload_pretty")  # the form's payload fields are for those who may edit it
        fieldsets = [
            (None, {"fields": main}),
            (
                "Timing",
                {
                    "fields": ["frequency", "cron_expression", "timezone"]
                    + (["timing_in_words", "next_runs_preview"] if obj is not None else []),
                    "description": "A named frequency (at a stable time of the period, spread by the job's id) "
                    "or a five-field cron expression on the clock of the timezone: one of the two.",
                },
            ),
            ("Running", {"fields": ["priority", "max_attempts", "retry_delays", "overlap", "catch_up"]}),
        ]
        if obj is not None:
            fieldsets += [
                (
                    "Bookkeeping",
                    {
                        "fields": BOOKKEEPING_FIELDS,
                    },
                ),
                ("Runs, latest first", {"fields": ["run_history"]}),
            ]
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # A built-in job keeps its name and type (the system refers to them); disabling it asks
        # first, so it is the page's button, not a checkbox that would not.
        protected = ("name", "job_type", "enabled") if obj is not None and obj.builtin else ()
        return (*self.readonly_fields, *protected)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.builtin:
            return False  # and periodic_job_delete refuses anyway
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        periodic_job_save(obj)

    def delete_model(self, request, obj):
        periodic_job_delete(obj)

    def delete_queryset(self, request, queryset):
        for job in queryset:
            try:
                periodic_job_delete(job)
            except PeriodicJobProtected as exc:
                self.message_user(request, exc.messages[0], messages.WARNING)

    # --- columns ---

    @admin.display(description="periodic job", ordering="name")
    def job(self, job):
        # The type under the name (one column, so the list fits 1366 px); a built-in is named by its type.
        if job.name == job.job_type:
            return job.name
        return format_html("{}<br><small>{}</small>", job.name, job.job_type)

    @admin.display(description="owner", ordering="owner__username")
    def owner_name(self, job):
        return job.owner.get_username() if job.owner_id else "–"

    @admin.display(description="runs")
    def timing(self, job):
        schedule = schedule_of(job)
        return timing_cell(schedule.cron_expression if schedule else job.timing_cron)

    @admin.display(description="next run", ordering="schedule__next_run_at")
    def next_run(self, job):
        schedule = schedule_of(job)
        return next_run_cell(schedule.next_run_at, schedule.timezone) if schedule else "–"

    @admin.display(description="state")
    def state(self, job):
        schedule = schedule_of(job)
        return state_cell(schedule) if schedule else "–"

    @admin.display(description="last run (UTC)", ordering="schedule__last_run_at")
    def last_run_link(self, job):
        return last_run_cell(schedule_of(job))

    @admin.display(description="outcome", ordering="schedule__last_status")
    def last_outcome(self, job):
        schedule = schedule_of(job)
        return status_badge(schedule.last_status) if schedule else "–"

    @admin.display(description="runs made", ordering="schedule__run_count")
    def run_count(self, job):
        schedule = schedule_of(job)
        return schedule.run_count if schedule else 0

    @admin.display(description="payload")
    def payload_pretty(self, job):
        return admin_pages.pretty_json(job.payload)

    @admin.display(description="in words")
    def timing_in_words(self, job):
        if not job.pk:
            return "–"
        try:
            cron_check(job.timing_cron)
        except NextRunUnknown as exc:  # written past validation
            return f"Never runs: {exc}"
        return timing_cell(job.timing_cron)

    @admin.display(description="next 5 runs")
    def next_runs_preview(self, job):
        if not job.pk:
            return "Saved jobs show their next runs here."
        return next_runs_html(job.timing_cron, job.timezone, "On its clock")

    @admin.display(description="next run (local)")
    def next_run_local(self, job):
        schedule = schedule_of(job)
        if schedule is None or schedule.next_run_at is None:
            return "–"
        return f"{schedule.next_run_at.astimezone(get_zone(schedule.timezone)):%Y-%m-%d %H:%M %Z}"

    @admin.display(description="next run (UTC)")
    def next_run_utc(self, job):
        schedule = schedule_of(job)
        return time_cell(schedule.next_run_at) if schedule else "–"

    @admin.display(description="runs")
    def run_history(self, job):
        schedule = schedule_of(job)
        if schedule is None:
            return "–"
        runs = JobRun.objects.filter(schedule=schedule)
        total = runs.count()
        if not total:
            return "No runs yet."
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:jobs_jobrun_change", args=[run.pk]),
                    str(run.pk)[:8],
                    time_cell(run.created_at),
                    run.trigger,
                    status_badge(run.status),
                    format_duration(run.duration),
                )
                for run in runs.order_by("-created_at")[:RUN_HISTORY]
            ),
        )
        all_runs = f"{reverse('admin:jobs_jobrun_changelist')}?schedule__id__exact={schedule.pk}"
        return format_html(
            '<table class="kj-history"><thead><tr><th>run</th><th>created</th><th>trigger</th><th>status</th>'
            "<th>duration</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">See all {} run{}</a> in the list of runs.</p>',
            rows,
            all_runs,
            total,
            "" if total == 1 else "s",
        )

    # --- actions ---

    @admin.action(
        description="Run the selected periodic jobs now (manual runs; timing unchanged)", permissions=["trigger"]
    )
    def run_now(self, request, queryset):
        self.apply(
            request, queryset, lambda job: periodic_job_trigger_now(job, user=request.user), "run now", said=started
        )

    @admin.action(description="Enable the selected periodic jobs", permissions=["change"])
    def enable(self, request, queryset):
        self.apply(request, queryset, lambda job: periodic_job_set_enabled(job, True), "enabled")

    @admin.action(description="Disable the selected periodic jobs (built-in ones ask first)", permissions=["change"])
    def disable(self, request, queryset):
        if request.POST.get("confirm") != "yes" and any(job.builtin and job.enabled for job in queryset):
            return self.confirm_disable(request, list(queryset), action_url=None)
        self.apply(request, queryset, lambda job: periodic_job_set_enabled(job, False), "disabled")
        return None

    def confirm_disable(self, request, jobs: list[PeriodicJob], action_url: str | None):
        """Disabling a built-in job stops work the system relies on (pruning, monitoring): ask first."""
        return TemplateResponse(
            request,
            "admin/jobs/periodicjob/confirm_disable.html",
            {
                **self.admin_site.each_context(request),
                "title": "Disable built-in periodic jobs?",
                "opts": self.opts,
                "builtins": [job for job in jobs if job.builtin and job.enabled],
                "others": [job for job in jobs if not (job.builtin and job.enabled)],
                "selected": [job.pk for job in jobs],
                "action_url": action_url,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    # --- pages ---

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("scheduling/", wrap(self.scheduling_view), name="jobs_scheduling"),
            path("<int:object_id>/do/<str:operation>/", wrap(self.operation_view), name="jobs_periodicjob_operation"),
            *super().get_urls(),
        ]

    def scheduling_view(self, request):
        """Pause or resume all scheduling: whoever sees periodic jobs sees it; `jobs.schedulers` changes it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST" and not self.has_schedulers_permission(request):
            raise PermissionDenied
        return admin_pages.scheduling_switch_page(self, request)

    def operation_view(self, request, object_id, operation):
        """The change page's buttons: the same services as the list's actions, for one job."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        services = {
            "run_now": (
                self.has_trigger_permission,
                lambda j: periodic_job_trigger_now(j, user=request.user),
                "run now",
            ),
            "enable": (self.has_change_permission, lambda j: periodic_job_set_enabled(j, True), "enabled"),
            "disable": (self.has_change_permission, lambda j: periodic_job_set_enabled(j, False), "disabled"),
        }
        if operation not in services:
            raise Http404(f"No operation {operation!r}.")
        allowed, service, done = services[operation]
        if not (allowed(request) and self.has_view_permission(request)):
            raise PermissionDenied
        job = self.get_object(request, str(object_id))
        if job is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, str(object_id))
        if operation == "disable" and job.builtin and job.enabled and request.POST.get("confirm") != "yes":
            return self.confirm_disable(request, [job], action_url=request.path)
        self.apply(request, [job], service, done, said=started if operation == "run_now" else None)
        return HttpResponseRedirect(reverse("admin:jobs_periodicjob_change", args=[job.pk]))

    def add_view(self, request, form_url="", extra_context=None):
        """Two steps: pick the job type, then fill in the form its payload schema makes."""
        if request.method == "GET" and "job_type" not in request.GET:
            if not self.has_add_permission(request):
                raise PermissionDenied
            return TemplateResponse(
                request,
                "admin/jobs/periodicjob/choose_type.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Add periodic job: which job type?",
                    "opts": self.opts,
                    "chooser": JobTypeChoiceForm(),
                },
            )
        return super().add_view(request, form_url, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        asks = request.method == "POST" and object_id and request.POST.get("_confirmed") != "yes"
        if asks and (asked := self._confirm_timing_change(request, object_id)) is not None:
            return asked
        job = self.get_object(request, unquote(object_id)) if object_id else None
        extra_context = {
            **(extra_context or {}),
            "can_trigger": self.has_trigger_permission(request),
            "can_switch": job is not None and self.has_change_permission(request, job),
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _confirm_timing_change(self, request, object_id):
        """A valid edit that changes when the job runs: the timing before and after, then save.

        Anything else (no change of timing, errors, no permission) goes on to the admin's own
        handling, which saves, shows the errors or refuses.
        """
        before = self.get_object(request, unquote(object_id))
        if before is None or not self.has_change_permission(request, before):
            return None
        after = self.get_object(request, unquote(object_id))  # the form changes its instance in place
        form = self.get_form(request, after, change=True)(request.POST, request.FILES, instance=after)
        if not form.is_valid():
            return None
        if all(getattr(before, name) == getattr(after, name) for name in TIMING_FIELDS):
            return None
        return TemplateResponse(
            request,
            "admin/jobs/periodicjob/confirm_timing.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Change when {before.name} runs?",
                "opts": self.opts,
                "original": before,
                "sides": [("Before", self._timing_summary(before)), ("After", self._timing_summary(after))],
                "posted": [
                    (key, value)
                    for key, values in request.POST.lists()
                    for value in values
                    if key != "csrfmiddlewaretoken"
                ],
                # What the whole system would start per hour, now and after this change.
                "change_figures": admin_pages.forecast_change_figures(
                    *periodic_job_forecast_change(
                        before,
                        cron=after.timing_cron,
                        tz=after.timezone,
                        job_type=after.job_type,
                        enabled=after.enabled,
                    )
                ),
            },
        )

    @staticmethod
    def _timing_summary(job: PeriodicJob) -> str:
        if not job.enabled:
            return format_html("<p><strong>Disabled</strong>: it does not run.</p>")
        cron = job.timing_cron
        return format_html("<p>{}</p>{}", timing_cell(cron), next_runs_html(cron, job.timezone, "Next runs"))
