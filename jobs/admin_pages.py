"""The console's own admin pages: the jobs dashboard, the enqueue page and queue control.

Views parse input and call one service or selector; JobRunAdmin (jobs/admin.py) routes to
them and checks permissions first.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from jobs import selectors, services
from jobs.admin_forms import (
    EnqueueOptionsForm,
    JobTypeChoiceForm,
    SchedulingSwitchForm,
    add_payload_errors,
    payload_form_class,
    payload_from,
)
from jobs.errors import PayloadInvalid
from jobs.forecast import Forecast, dashboard_forecast
from jobs.periodic import scheduling_pause, scheduling_resume
from jobs.registry import registry
from jobs.services import queue_pause, queue_resume
from kordant.audit import CHANGE, admin_log
from reports.charts import SERIES_COLOURS, bars_over_time, stacked_columns

# The dashboard reloads itself this often (seconds): a meta refresh, no JavaScript.
DASHBOARD_REFRESH_SECONDS = 5


def pretty_json(value) -> str:
    return format_html(
        '<pre class="kj-json" style="white-space:pre-wrap">{}</pre>', json.dumps(value, indent=2, sort_keys=True)
    )


def runs_per_hour_chart(per_hour: list[dict]):
    """Runs created per hour for 24 h as SVG columns, the failed part of each in red."""
    return bars_over_time(
        [(f"{bucket['hour']:%H}h", bucket["runs"]) for bucket in per_hour],
        overlay=[bucket["failed"] for bucket in per_hour],
        title="Runs and failures per hour, last 24 hours",
        width=720,
        height=180,
    )


def forecast_figures(forecast: Forecast, *, title: str = "Runs per hour, next 7 days (UTC)") -> dict:
    """A forecast as the templates show it (admin/jobs/forecast.html): the chart, its legend, the peak."""
    names = forecast.job_types
    ticks = {
        index: f"{forecast.hour(index):%a %d}"
        for index in range(forecast.hours)
        if forecast.hour(index).hour == 0 and forecast.hours > 24
    } or {0: f"{forecast.start:%H:00}"}
    peak = forecast.peak
    return {
        "forecast": forecast,
        "chart": stacked_columns(
            [f"{forecast.hour(index):%a %d %H:00} UTC" for index in range(forecast.hours)],
            [(name, forecast.per_type[name]) for name in names],
            title=title,
            ticks=ticks,
            mark=int((peak[0] - forecast.start).total_seconds()) // 3600 if peak else None,
        ),
        "legend": [
            (name, SERIES_COLOURS[number % len(SERIES_COLOURS)], sum(forecast.per_type[name]))
            for number, name in enumerate(names)
        ],
        "peak": peak,
        "total": forecast.total,
    }


def forecast_change_figures(before: Forecast, after: Forecast) -> dict:
    """Before and after a proposed change (admin/jobs/forecast_change.html), for a confirmation step."""
    return {
        "before": forecast_figures(before, title="Now"),
        "after": forecast_figures(after, title="After the change"),
        "change": after.total - before.total,
    }


def dashboard(model_admin, request):
    data = selectors.jobs_dashboard()
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Jobs dashboard",
        "opts": model_admin.opts,
        "refresh_seconds": DASHBOARD_REFRESH_SECONDS,
        "data": data,
        "chart": runs_per_hour_chart(data["per_hour"]),
        "forecast": forecast_figures(dashboard_forecast()),
        "can_trigger": model_admin.has_trigger_permission(request),
        "changelist_url": reverse("admin:jobs_jobrun_changelist"),
        **scheduling_context(request),
    }
    return TemplateResponse(request, "admin/jobs/dashboard.html", context)


def scheduling_context(request, form=None) -> dict:
    """The scheduling switch panel (admin/jobs/scheduling_panel.html): its state, the control, disabled built-ins."""
    from jobs.operators import may_edit_scheduler_configs

    switch = selectors.scheduling_switch_get()
    return {
        "switch": switch,
        "can_pause": may_edit_scheduler_configs(request.user),
        "switch_form": form or SchedulingSwitchForm(initial={"operation": "resume" if switch.paused else "pause"}),
        "disabled_builtins": selectors.periodic_jobs_disabled_builtin(),
    }


def scheduling_switch_page(model_admin, request):
    """Pause (with a reason) or resume all scheduling; the caller checked who may."""
    form = SchedulingSwitchForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        if form.cleaned_data["operation"] == "pause":
            reason = form.cleaned_data["reason"].strip()
            switch = scheduling_pause(user=request.user, reason=reason)
            admin_log(request.user, switch, CHANGE, f"Paused all scheduling: {reason}")
            messages.warning(request, "Scheduling is paused: nothing fires until it is resumed.")
        else:
            switch = scheduling_resume(user=request.user)
            admin_log(request.user, switch, CHANGE, "Resumed all scheduling.")
            messages.success(request, "Scheduling resumed: each schedule catches up as its policy says.")
        return HttpResponseRedirect(reverse("admin:jobs_dashboard"))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Scheduling",
        "opts": model_admin.opts,
        **scheduling_context(request, form if form.is_bound else None),
    }
    return TemplateResponse(request, "admin/jobs/scheduling.html", context)


def enqueue_page(model_admin, request):
    """Pick a job type, fill in its payload form, choose priority and time; field errors show inline."""
    data = request.POST if request.method == "POST" else None
    chooser = JobTypeChoiceForm(request.GET or None)
    job_type = None
    if chooser.is_valid():
        job_type = registry.get(chooser.cleaned_data["job_type"])
    payload_form = options_form = None
    if job_type is not None:
        payload_form = payload_form_class(job_type)(data, prefix="payload")
        options_form = EnqueueOptionsForm(data, job_type=job_type, prefix="options")
        if data is not None and payload_form.is_valid() and options_form.is_valid():
            run = _enqueue_from_forms(request, job_type, payload_form, options_form)
            if run is not None:
                model_admin.log_enqueued(request, run)
                messages.success(request, f"Enqueued {job_type.name} as run {run.pk}.")
                return HttpResponseRedirect(reverse("admin:jobs_jobrun_change", args=[run.pk]))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Enqueue a job",
        "opts": model_admin.opts,
        "chooser": chooser,
        "job_type": job_type,
        "payload_form": payload_form,
        "options_form": options_form,
    }
    return TemplateResponse(request, "admin/jobs/enqueue.html", context)


def _enqueue_from_forms(request, job_type, payload_form, options_form):
    options = options_form.cleaned_data
    try:
        return services.enqueue(
            job_type.name,
            payload_from(payload_form),
            priority=options["priority"] or None,
            at=options["at"],
            user=request.user,
            trigger="manual",
        )
    except PayloadInvalid as exc:
        add_payload_errors(payload_form, exc.errors)
        return None


def queue_control(model_admin, request, name: str, operation: str):
    services = {"pause": queue_pause, "resume": queue_resume}
    if operation not in services:
        messages.error(request, f"Unknown operation {operation!r}.")
    else:
        try:
            services[operation](name, user=request.user)
        except ValueError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Queue {name} {'paused' if operation == 'pause' else 'resumed'}.")
    return HttpResponseRedirect(reverse("admin:jobs_dashboard"))
