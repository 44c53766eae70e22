"""Every admin page on a lived-in database, as a superuser and as an operator.

The pages are enumerated from `admin.site._registry` and the admin URLconf, so a new model,
filter, column, action or custom page is swept without touching this file; a new custom
URL must be added to CUSTOM_PAGES (what it is requested with, what it answers) or the
sweep fails saying so. Each page must answer 200, or the 403/405 its admin documents
(a `has_*_permission` that says no, a POST-only view). A 500 anywhere fails, with the URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import django_rq
import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db.models import Model
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, reverse

from jobs import rq_dashboard
from jobs.models import JobRun, PeriodicJob
from jobs.operators import OPERATORS_GROUP
from jobs.registry import registry
from tests.factories import UserFactory
from tests.lived_in import lived_in_build

pytestmark = pytest.mark.django_db(transaction=True)

# The standard pages every ModelAdmin has; anything else a ModelAdmin routes is a custom page.
STANDARD_SUFFIXES = ("_changelist", "_add", "_history", "_delete", "_change")
# A model's change pages visited: one object per value of each choice field, plus the first and last.
MAX_OBJECTS_PER_MODEL = 12


@dataclass
class Visit:
    url: str
    expected: tuple[int, ...]
    method: str = "get"
    data: dict | None = None


def _run_id(status: str) -> str:
    return str(JobRun.objects.filter(status=status).values_list("pk", flat=True).first())


def _periodic_id(*, builtin: bool) -> int:
    return PeriodicJob.objects.filter(builtin=builtin).values_list("pk", flat=True).order_by("pk").first()


# Custom admin URLs by name: (kwargs, method, expected). GET on a POST-only view is a documented 405.
# django_rq's own dashboard (mounted in the admin) is listed too; pages of it that would change Redis
# (clear, empty, delete) must answer the 403 jobs.rq_dashboard documents, and the rest are not swept.
CUSTOM_PAGES = {
    "auth_user_password_change": [
        (lambda: {"id": UserFactory._meta.model.objects.order_by("pk").first().pk}, "get", (200,))
    ],
    "jobs_dashboard": [({}, "get", (200,))],
    "jobs_enqueue": [({}, "get", (200,))],  # and once per job type, below
    "jobs_queue_control": [
        ({"name": "low", "operation": "pause"}, "get", (405,)),
        ({"name": "low", "operation": "pause"}, "post", (302,)),
        ({"name": "low", "operation": "resume"}, "post", (302,)),
    ],
    # Operators see the scheduling switch (GET) but changing it takes jobs.schedulers (their POST is a 403);
    # an empty POST is the form again, saying what is missing.
    "jobs_scheduling": [({}, "get", (200,)), ({}, "post", (200, 403))],
    "jobs_periodicjob_operation": [
        (lambda: {"object_id": _periodic_id(builtin=False), "operation": "run_now"}, "get", (405,)),
        (lambda: {"object_id": _periodic_id(builtin=False), "operation": "run_now"}, "post", (302,)),
        # Enabling takes the model's change permission: a superuser's 302, an operator's 403.
        (lambda: {"object_id": _periodic_id(builtin=True), "operation": "enable"}, "post", (302, 403)),
        # Disabling a built-in job asks first (200), or is refused to an operator (403).
        (lambda: {"object_id": _periodic_id(builtin=True), "operation": "disable"}, "post", (200, 403)),
    ],
    "jobs_jobrun_operation": [
        (lambda: {"object_id": _run_id("failed"), "operation": "retry"}, "get", (405,)),
        (lambda: {"object_id": _run_id("completed"), "operation": "run_again"}, "post", (302,)),
    ],
}
DJANGO_RQ_PAGES = {
    "django_rq_home": [({}, "get", (200,))],
    "django_rq_home_json": [({}, "get", (200, 403))],  # needs an API token or a superuser
    "django_rq_metrics": [],  # Prometheus text; needs prometheus_client, which the project does not use
    "django_rq_jobs": "per queue",
    "django_rq_queue_details": "per queue",
    "django_rq_finished_jobs": "per queue",
    "django_rq_failed_jobs": "per queue",
    "django_rq_scheduled_jobs": "per queue",
    "django_rq_started_jobs": "per queue",
    "django_rq_deferred_jobs": "per queue",
    "django_rq_workers": "per queue",
    "django_rq_delete_failed_jobs": "per queue",  # refused (403): jobs.rq_dashboard
    "django_rq_clear": "per queue",  # refused (403): jobs.rq_dashboard
    "django_rq_job_detail": "per job",
    "django_rq_delete_job": "per job",  # refused (403): jobs.rq_dashboard
    # These act on GET or need state the demo has not got (an RQ result, a cron scheduler):
    "django_rq_requeue_all": [],
    "django_rq_result_detail": [],
    "django_rq_requeue_job": [],
    "django_rq_enqueue_job": [],
    "django_rq_stop_job": [],
    "django_rq_confirm_action": [],
    "django_rq_actions": [],
    "django_rq_worker_details": [],
    "django_rq_scheduler_jobs": [],
    "django_rq_cron_scheduler_detail": [],
    "django_rq_cron_job_detail": [],
}


def _request_for(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _objects_to_visit(model_admin, request) -> list[Model]:
    """One object per value of each choice field (status, kind, tier...), plus the first and the last."""
    queryset = model_admin.get_queryset(request).order_by("pk")
    chosen = {}
    for obj in (queryset.first(), queryset.last()):
        if obj is not None:
            chosen[obj.pk] = obj
    for field in model_admin.model._meta.get_fields():
        if getattr(field, "choices", None) and getattr(field, "concrete", False):
            for value in queryset.values_list(field.attname, flat=True).distinct()[:20]:
                obj = queryset.filter(**{field.attname: value}).first()
                chosen.setdefault(obj.pk, obj)
    return list(chosen.values())[:MAX_OBJECTS_PER_MODEL]


def _model_pages(client, model_admin, request) -> tuple[list[Visit], list[str]]:
    """Changelist (with every filter choice, sort and a search), add, change, history and delete pages."""
    opts = model_admin.model._meta
    base = f"admin:{opts.app_label}_{opts.model_name}"
    may_view = model_admin.has_view_or_change_permission(request)
    visits = []
    changelist = reverse(f"{base}_changelist")
    visits.append(Visit(changelist, (200,) if may_view else (403,)))
    if not may_view:
        return visits, []
    response = client.get(changelist)
    if response.status_code != 200:
        return visits, []  # fails in the sweep; its filters and objects cannot be read from it
    cl = response.context["cl"]
    for spec in cl.filter_specs:
        for choice in spec.choices(cl):
            visits.append(Visit(changelist + choice["query_string"], (200,)))
    for index, _ in enumerate(cl.list_display):
        visits.append(Visit(f"{changelist}?o=-{index}", (200,)))  # each column's value for every row
    if model_admin.search_fields:
        visits.append(Visit(f"{changelist}?q=demo", (200,)))
    visits.append(Visit(reverse(f"{base}_add"), (200,) if model_admin.has_add_permission(request) else (403,)))
    if model_admin.model is PeriodicJob and model_admin.has_add_permission(request):
        # The add page's second step: the form each job type's payload schema makes.
        visits += [Visit(f"{reverse(f'{base}_add')}?job_type={name}", (200,)) for name in registry.names()]
    objects = _objects_to_visit(model_admin, request)
    for obj in objects:
        visits.append(Visit(reverse(f"{base}_change", args=[obj.pk]), (200,)))
    for obj in objects[:1]:  # history and delete pages show little of the object: one is enough
        visits.append(Visit(reverse(f"{base}_history", args=[obj.pk]), (200,)))
        deletable = model_admin.has_delete_permission(request, obj)
        visits.append(Visit(reverse(f"{base}_delete", args=[obj.pk]), (200,) if deletable else (403,)))
    empty = [] if objects else [opts.label]
    return visits, empty


def _action_visits(model_admin, request) -> list[Visit]:
    """Each action the user is offered, on one row: its confirmation page (200) or its result (302)."""
    opts = model_admin.model._meta
    obj = model_admin.get_queryset(request).order_by("-pk").first()
    if obj is None:
        return []
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return [
        Visit(changelist, (200, 302), "post", {"action": name, admin.helpers.ACTION_CHECKBOX_NAME: [str(obj.pk)]})
        for name in model_admin.get_actions(request)
    ]


def _custom_visits(model_admin) -> list[Visit]:
    """The custom pages a ModelAdmin routes, each as CUSTOM_PAGES says; an unlisted one fails the sweep."""
    opts = model_admin.model._meta
    visits = []
    for pattern in model_admin.get_urls():
        name = pattern.name
        if name is None or name.endswith(tuple(f"{opts.app_label}_{opts.model_name}{s}" for s in STANDARD_SUFFIXES)):
            continue
        if opts.app_label == "django_rq":
            visits += _django_rq_visits(name)
            continue
        assert name in CUSTOM_PAGES, f"admin page {name!r} ({pattern.pattern}) is not swept: add it to CUSTOM_PAGES"
        for kwargs, method, expected in CUSTOM_PAGES[name]:
            kwargs = kwargs() if callable(kwargs) else kwargs
            visits.append(Visit(reverse(f"admin:{name}", kwargs=kwargs), expected, method))
    visits += [
        Visit(f"{reverse('admin:jobs_enqueue')}?job_type={name}", (200,)) for name in registry.names()
    ]  # every job type's payload form
    return visits


def _django_rq_visits(name: str) -> list[Visit]:
    assert name in DJANGO_RQ_PAGES, f"django_rq page {name!r} is not swept: add it to DJANGO_RQ_PAGES"
    how = DJANGO_RQ_PAGES[name]
    queues = range(len(django_rq.settings.QUEUES_LIST))
    # Pages that would change Redis behind the runs' backs answer the documented 403 (jobs.rq_dashboard).
    expected = (200,) if name.removeprefix("django_rq_") in rq_dashboard.READ_ONLY_VIEWS else (403,)
    if how == "per queue":
        return [Visit(reverse(f"admin:{name}", kwargs={"queue_index": index}), expected) for index in queues]
    if how == "per job":
        visits = []
        for index, queue in enumerate(django_rq.settings.QUEUES_LIST):
            job_ids = django_rq.get_queue(queue["name"]).get_job_ids()[:1]
            visits += [
                Visit(reverse(f"admin:{name}", kwargs={"queue_index": index, "job_id": job_id}), expected)
                for job_id in job_ids
            ]
        return visits
    return [Visit(reverse(f"admin:{name}", kwargs=kwargs), expected, method) for kwargs, method, expected in how]


def _site_visits(user) -> list[Visit]:
    """The index, each app's index, the password change page, and the admin's own URLs listed."""
    visits = [Visit(reverse("admin:index"), (200,)), Visit(reverse("admin:password_change"), (200,))]
    visits.append(Visit(reverse("admin:jsi18n"), (200,)))
    labels = {model._meta.app_label for model in admin.site._registry}
    for label in sorted(labels):
        visible = user.has_module_perms(label)
        visits.append(Visit(reverse("admin:app_list", args=[label]), (200,) if visible else (404,)))
    # The site's own URLs are Django's; this fails when the project adds one there without sweeping it.
    site_names = {p.name for p in admin.site.get_urls() if isinstance(p, URLPattern)}
    assert site_names <= {
        "index", "login", "logout", "password_change", "password_change_done", "autocomplete", "jsi18n",
        "view_on_site", "app_list", None,
    }, site_names  # fmt: skip
    assert all(isinstance(p, URLPattern | URLResolver) for p in admin.site.get_urls())
    return visits


def superuser():
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def operator():
    user = UserFactory(username="olive", is_staff=True)
    user.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    return user


def sweep(client, user) -> tuple[list[str], int, list[str]]:
    """Every page for one user: (failures, pages requested, models with no rows to open)."""
    client.force_login(user)
    client.raise_request_exception = False  # collect every failing page, not only the first
    request = _request_for(user)
    gets, posts, empty = _site_visits(user), [], []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label != "django_rq":
            visits, nothing = _model_pages(client, model_admin, request)
            gets += visits
            empty += nothing
            if model_admin.has_view_or_change_permission(request):
                posts += _action_visits(model_admin, request)
        custom = _custom_visits(model_admin) if model_admin.has_view_or_change_permission(request) else []
        gets += [visit for visit in custom if visit.method == "get"]
        posts += [visit for visit in custom if visit.method == "post"]

    failures = []
    # Pages first, then what changes things (actions, POSTs), so every page saw the lived-in state.
    for visit in gets + posts:
        response = getattr(client, visit.method)(visit.url, visit.data or {})
        if response.status_code not in visit.expected:
            failures.append(f"{visit.method.upper()} {visit.url} {visit.data or ''}: {response.status_code}")
        elif response.status_code == 302 and visit.method == "post":
            landing = client.get(response["Location"])
            if landing.status_code != 200:
                failures.append(f"after {visit.method.upper()} {visit.url} {visit.data}: {landing.status_code}")
    client.logout()
    return failures, len(gets) + len(posts), empty


def test_every_admin_page_answers_on_a_lived_in_database_as_operator_and_superuser(
    client, tmp_path, run_worker, tier_configs, settings
):
    """One lived-in database (it takes a while to build), swept by an operator, then by a superuser."""
    lived_in_build(tmp_path, run_worker, settings)
    assert_lived_in()
    for make_user in (operator, superuser):
        user = make_user()
        failures, requested, empty = sweep(client, user)
        assert not failures, f"{user}: {len(failures)} of {requested} pages failed:\n" + "\n".join(failures)
        assert requested > 200, requested  # the sweep really swept
        if user.is_superuser:
            assert empty == [], f"the lived-in database has no rows for {empty}: add them to tests/lived_in.py"


def assert_lived_in():
    """The states the sweep is meant to see are really there: a fixture that quietly made fewer is a gap."""
    from jobs.models import Schedule
    from notifications.models import Notification, WebhookDelivery
    from reports.models import Report
    from scanners.darkwatch.models import Alert
    from scanners.hometitle.models import TitleChange
    from scanners.removebrokers.models import RemovalRequest

    statuses = set(JobRun.objects.values_list("status", flat=True))
    assert {"completed", "failed", "retrying", "cancelled", "skipped"} <= statuses, statuses
    assert JobRun.objects.filter(events__message__contains="retried by hand").exists()
    assert JobRun.objects.filter(trigger="cron").exists()
    assert not Schedule.objects.filter(enabled=True, last_run__isnull=True).exists()
    assert Report.objects.filter(status="ready").exists()
    assert Alert.objects.exists() and TitleChange.objects.exists()
    assert Notification.objects.filter(status="sent").exists()
    assert WebhookDelivery.objects.exists()
    assert RemovalRequest.objects.exclude(status="pending").exists()
    assert re.match(r"^[0-9a-f-]{36}$", _run_id("failed"))
    periodic = PeriodicJob.objects.select_related("schedule")
    assert periodic.filter(owner__isnull=False).exists() and periodic.filter(builtin=True, enabled=False).exists()
    assert all(job.schedule.last_run_id for job in periodic)
