"""One permission model for both doors: every write endpoint of the API, enumerated from the
URLconf, tried by each kind of user; the admin asked the same question answers the same, and
every write that went through is in the admin log (issue 16, item 3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from jobs.models import JobRun, PeriodicJob, Schedule, SchedulerConfig
from scanners.darkwatch.models import Alert
from scanners.hometitle.models import TitleChange
from tests.api.factories import (
    AlertFactory,
    JobRunFactory,
    ReportFactory,
    ScheduleFactory,
    SchedulerConfigFactory,
    TitleChangeFactory,
)
from tests.factories import OperatorFactory, SubscriptionFactory, UserFactory
from tests.scanners.factories import PropertyFactory

pytestmark = pytest.mark.django_db
Status = JobRun.Status

USERS = ("superuser", "operator_with_schedulers", "operator", "staff_without_permissions", "owner", "another_customer")
USERS_AND_ANONYMOUS = (*USERS, "anonymous")

# Who each rule lets through (the owner: the customer whose subscription the object belongs to).
ALLOWED = {
    "trigger": {"superuser", "operator_with_schedulers", "operator"},
    "schedulers": {"superuser", "operator_with_schedulers"},
    "owner_or_change": {"superuser", "owner"},  # operators view and run jobs; they change nobody's data
    "owner_or_trigger": {"superuser", "operator_with_schedulers", "operator", "owner"},
}


def make_user(kind: str):
    return {
        "superuser": lambda: UserFactory(username="root", is_staff=True, is_superuser=True),
        "operator_with_schedulers": lambda: OperatorFactory(username="sched", operator_permissions__schedulers=True),
        "operator": lambda: OperatorFactory(username="olive"),
        "staff_without_permissions": lambda: UserFactory(username="sam", is_staff=True),
        "another_customer": lambda: SubscriptionFactory(user=UserFactory(username="bob")).user,
        "anonymous": lambda: None,
    }[kind]()


@dataclass
class Attempt:
    url: str
    body: dict | None
    done: Callable[[], object | None]  # the object the write changed (to find in the admin log), None if unchanged


@dataclass
class Write:
    rule: str
    action_flag: int
    arrange: Callable[[object], Attempt]  # given the owner's subscription


def _reloaded(model, pk, test):
    obj = model.objects.filter(pk=pk).first()
    return obj if obj is not None and test(obj) else None


def enqueue_job(sub):
    def done():
        return JobRun.objects.filter(job_type="jobs.ping", trigger=JobRun.Trigger.API).first()

    return Attempt("/api/v1/jobs/", {"job_type": "jobs.ping", "payload": {"message": "hi"}}, done)


def cancel_job(sub):
    run = JobRunFactory(subscription=sub, status=Status.QUEUED)
    return Attempt(
        f"/api/v1/jobs/{run.pk}/cancel/", None, lambda: _reloaded(JobRun, run.pk, lambda r: r.status == "cancelled")
    )


def retry_job(sub):
    run = JobRunFactory(subscription=sub, status=Status.FAILED, attempt=4)
    return Attempt(
        f"/api/v1/jobs/{run.pk}/retry/", None, lambda: _reloaded(JobRun, run.pk, lambda r: r.status != "failed")
    )


def schedule_set(enabled: bool):
    def arrange(sub):
        schedule = ScheduleFactory(subscription=sub, enabled=not enabled)
        verb = "resume" if enabled else "pause"
        return Attempt(
            f"/api/v1/schedules/{schedule.pk}/{verb}/",
            None,
            lambda: _reloaded(Schedule, schedule.pk, lambda s: s.enabled == enabled),
        )

    return arrange


def trigger_schedule(sub):
    schedule = ScheduleFactory(subscription=sub)
    return Attempt(
        f"/api/v1/schedules/{schedule.pk}/trigger/",
        None,
        lambda: schedule if JobRun.objects.filter(schedule=schedule, trigger="manual").exists() else None,
    )


def add_config(sub):
    return Attempt(
        "/api/v1/scheduler-configs/",
        {"tier": "basic", "job_type": "jobs.ping", "frequency": "daily"},
        lambda: SchedulerConfig.objects.filter(tier="basic", job_type="jobs.ping").first(),
    )


def change_config(partial: bool):
    def arrange(sub):
        config = SchedulerConfigFactory(tier="plus", job_type="jobs.ping", frequency="daily")
        body = {"frequency": "weekly"} if partial else {"tier": "plus", "job_type": "jobs.ping", "frequency": "weekly"}
        return Attempt(
            f"/api/v1/scheduler-configs/{config.pk}/",
            body,
            lambda: _reloaded(SchedulerConfig, config.pk, lambda c: c.frequency == "weekly"),
        )

    return arrange


def delete_config(sub):
    config = SchedulerConfigFactory(tier="plus", job_type="jobs.ping", frequency="daily")
    return Attempt(
        f"/api/v1/scheduler-configs/{config.pk}/",
        None,
        lambda: None if SchedulerConfig.objects.filter(pk=config.pk).exists() else config,
    )


def set_finding(model, status: str):
    def arrange(sub):
        if model is Alert:
            finding, path = AlertFactory(subscription=sub), "alerts"
        else:
            finding, path = TitleChangeFactory(property=PropertyFactory(subscription=sub)), "title-changes"
        verb = "acknowledge" if status == "acknowledged" else "resolve"
        return Attempt(
            f"/api/v1/{path}/{finding.pk}/{verb}/",
            None,
            lambda: _reloaded(model, finding.pk, lambda f: f.status == status),
        )

    return arrange


def request_report(sub):
    return Attempt(
        "/api/v1/reports/",
        {"subscription": sub.pk, "period_start": "2026-10-01", "period_end": "2026-10-31"},
        lambda: JobRun.objects.filter(job_type="reports.generate").first(),
    )


def _customer_job(sub, **fields):
    from jobs.periodic import periodic_job_create

    values = {"name": "weekly report", "job_type": "reports.recent", "cron_expression": "0 9 * * 1"}
    return periodic_job_create(owner=sub.user, payload={"subscription_id": sub.pk}, **{**values, **fields})


def add_periodic_job(sub):
    body = {
        "name": "weekly report",
        "job_type": "reports.recent",
        "payload": {"subscription_id": sub.pk},
        "cron_expression": "0 9 * * 1",
        "timezone": "Europe/London",
    }
    return Attempt("/api/v1/periodic-jobs/", body, lambda: PeriodicJob.objects.filter(name="weekly report").first())


def change_periodic_job(partial: bool):
    def arrange(sub):
        job = _customer_job(sub)
        body = {"cron_expression": "0 10 * * 1"}
        if not partial:
            body.update(name=job.name, job_type=job.job_type, payload=job.payload)
        return Attempt(
            f"/api/v1/periodic-jobs/{job.pk}/",
            body,
            lambda: _reloaded(PeriodicJob, job.pk, lambda j: j.cron_expression == "0 10 * * 1"),
        )

    return arrange


def delete_periodic_job(sub):
    job = _customer_job(sub)
    return Attempt(
        f"/api/v1/periodic-jobs/{job.pk}/",
        None,
        lambda: None if PeriodicJob.objects.filter(pk=job.pk).exists() else job,
    )


def periodic_job_set(enabled: bool):
    def arrange(sub):
        job = _customer_job(sub, enabled=not enabled)
        verb = "enable" if enabled else "disable"
        return Attempt(
            f"/api/v1/periodic-jobs/{job.pk}/{verb}/",
            None,
            lambda: _reloaded(PeriodicJob, job.pk, lambda j: j.enabled == enabled),
        )

    return arrange


def trigger_periodic_job(sub):
    job = _customer_job(sub)
    return Attempt(
        f"/api/v1/periodic-jobs/{job.pk}/trigger/",
        None,
        lambda: job if JobRun.objects.filter(schedule__periodic_job=job, trigger="manual").exists() else None,
    )


def scheduling_set(paused: bool):
    def arrange(sub):
        from jobs.models import SchedulingSwitch

        SchedulingSwitch.objects.update_or_create(pk=1, defaults={"paused": not paused})
        verb = "pause" if paused else "resume"
        return Attempt(
            f"/api/v1/scheduler/{verb}",
            {"reason": "maintenance"} if paused else None,
            lambda: _reloaded(SchedulingSwitch, 1, lambda s: s.paused == paused),
        )

    return arrange


def failed_webhook_event(sub):
    from notifications.models import Notification, WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(owner=sub.user, url="http://127.0.0.1:9/hooks", kinds=["alert.*"])
    event = Notification.objects.create(
        recipient=sub.user,
        channel="webhook",
        kind="reminder",
        context={"message": "hi"},
        webhook_endpoint=endpoint,
        status="failed",
        attempts=1,
    )
    return endpoint, event


def replay_event(sub):
    from notifications.models import Notification

    _, event = failed_webhook_event(sub)
    return Attempt(
        f"/api/v1/webhook-events/{event.pk}/replay/",
        None,
        lambda: _reloaded(Notification, event.pk, lambda e: e.status == "queued"),
    )


def replay_failed_events(sub):
    from notifications.models import Notification

    endpoint, event = failed_webhook_event(sub)
    return Attempt(
        f"/api/v1/webhook-endpoints/{endpoint.pk}/replay-failed/",
        {"since": "2020-01-01T00:00:00Z"},
        lambda: endpoint if Notification.objects.filter(pk=event.pk, status="queued").exists() else None,
    )


# Every write endpoint of the API. A new one fails test_every_write_endpoint_is_in_the_table
# until it is added here, with the rule it follows.
WRITES: dict[tuple[str, str], Write] = {
    ("api:jobrun-list", "post"): Write("trigger", ADDITION, enqueue_job),
    ("api:jobrun-cancel", "post"): Write("trigger", CHANGE, cancel_job),
    ("api:jobrun-retry", "post"): Write("trigger", CHANGE, retry_job),
    ("api:schedule-pause", "post"): Write("owner_or_change", CHANGE, schedule_set(False)),
    ("api:schedule-resume", "post"): Write("owner_or_change", CHANGE, schedule_set(True)),
    ("api:schedule-trigger", "post"): Write("trigger", CHANGE, trigger_schedule),
    ("api:schedulerconfig-list", "post"): Write("schedulers", ADDITION, add_config),
    ("api:schedulerconfig-detail", "put"): Write("schedulers", CHANGE, change_config(partial=False)),
    ("api:schedulerconfig-detail", "patch"): Write("schedulers", CHANGE, change_config(partial=True)),
    ("api:schedulerconfig-detail", "delete"): Write("schedulers", DELETION, delete_config),
    ("api:alert-acknowledge", "post"): Write("owner_or_change", CHANGE, set_finding(Alert, "acknowledged")),
    ("api:alert-resolve", "post"): Write("owner_or_change", CHANGE, set_finding(Alert, "resolved")),
    ("api:titlechange-acknowledge", "post"): Write("owner_or_change", CHANGE, set_finding(TitleChange, "acknowledged")),
    ("api:titlechange-resolve", "post"): Write("owner_or_change", CHANGE, set_finding(TitleChange, "resolved")),
    ("api:report-list", "post"): Write("owner_or_trigger", ADDITION, request_report),
    ("api:periodicjob-list", "post"): Write("owner_or_change", ADDITION, add_periodic_job),
    ("api:periodicjob-detail", "put"): Write("owner_or_change", CHANGE, change_periodic_job(partial=False)),
    ("api:periodicjob-detail", "patch"): Write("owner_or_change", CHANGE, change_periodic_job(partial=True)),
    ("api:periodicjob-detail", "delete"): Write("owner_or_change", DELETION, delete_periodic_job),
    ("api:periodicjob-enable", "post"): Write("owner_or_change", CHANGE, periodic_job_set(True)),
    ("api:periodicjob-disable", "post"): Write("owner_or_change", CHANGE, periodic_job_set(False)),
    ("api:periodicjob-trigger", "post"): Write("owner_or_trigger", CHANGE, trigger_periodic_job),
    ("api:scheduler-pause", "post"): Write("schedulers", CHANGE, scheduling_set(True)),
    ("api:scheduler-resume", "post"): Write("schedulers", CHANGE, scheduling_set(False)),
    ("api:webhookevent-replay", "post"): Write("owner_or_change", CHANGE, replay_event),
    ("api:webhookendpoint-replay-failed", "post"): Write("owner_or_change", CHANGE, replay_failed_events),
}
# Writes that change no one's data: a login (its own throttles and tests, tests/api/test_auth.py).
NOT_ADMIN_CHANGES = {("api:token", "post")}


def api_write_endpoints() -> set[tuple[str, str]]:
    """(URL name, method) of every DRF view in the URLconf that answers a method other than GET, HEAD, OPTIONS."""
    found = set()

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, inner)
                continue
            assert isinstance(pattern, URLPattern)
            view_class = getattr(pattern.callback, "cls", None)
            if view_class is None:
                continue
            actions = getattr(pattern.callback, "actions", None)
            methods = actions or {m: m for m in view_class.http_method_names if hasattr(view_class, m)}
            for method in methods:
                if method.upper() not in ("GET", "HEAD", "OPTIONS"):
                    found.add((f"{namespace}{pattern.name}", method))

    walk(get_resolver().url_patterns, "")
    return found


def test_every_write_endpoint_is_in_the_table():
    endpoints = api_write_endpoints()
    assert ("api:jobrun-list", "post") in endpoints  # the walk sees the router's routes
    assert endpoints == set(WRITES) | NOT_ADMIN_CHANGES


def client_for(user) -> APIClient:
    from api.services import api_token_issue

    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user)}")
    return client


@pytest.mark.parametrize("who", USERS_AND_ANONYMOUS)
@pytest.mark.parametrize("endpoint", sorted(WRITES), ids=lambda e: f"{e[1].upper()} {e[0]}")
def test_each_write_is_allowed_by_the_rule_and_logged_like_an_admin_change(endpoint, who, tier_configs):
    write = WRITES[endpoint]
    owner_subscription = SubscriptionFactory(user=UserFactory(username="alice"))
    user = owner_subscription.user if who == "owner" else make_user(who)
    attempt = write.arrange(owner_subscription)
    method = endpoint[1]

    response = getattr(client_for(user), method)(attempt.url, attempt.body, format="json")
    changed = attempt.done()

    if who in ALLOWED[write.rule]:
        assert 200 <= response.status_code < 300, (response.status_code, response.content[:300])
        assert changed is not None, "answered 2xx but changed nothing"
        entry = LogEntry.objects.get(user=user)
        assert (entry.content_type, entry.object_id, entry.action_flag) == (
            ContentType.objects.get_for_model(changed),
            str(changed.pk),
            write.action_flag,
        )
        assert "through the API" in entry.change_message
    else:
        expected = {401} if who == "anonymous" else {400, 403, 404}
        assert response.status_code in expected, (response.status_code, response.content[:300])
        assert changed is None, "refused, yet the object changed"
        assert not LogEntry.objects.exists()


# What the admin answers each user for the same decision: the page or action that does it there.
ADMIN_PROBES = {
    "trigger": ("/admin/jobs/jobrun/enqueue/", None),
    "schedulers": ("/admin/jobs/schedulerconfig/add/", None),
    "change Schedule": ("/admin/jobs/schedule/", "disable"),
    "change Alert": ("/admin/scanners/alert/", "acknowledge"),
    "change TitleChange": ("/admin/scanners/titlechange/", "resolve"),
    "report": ("/admin/reports/report/", "regenerate"),
    "change PeriodicJob": ("/admin/jobs/periodicjob/", "disable"),
    "run PeriodicJob": ("/admin/jobs/periodicjob/", "run_now"),
    "change Notification": ("/admin/notifications/notification/", "replay"),
    "change WebhookEndpoint": ("/admin/notifications/webhookendpoint/", "replay_failed"),
}
PROBE_OF = {
    ("api:jobrun-list", "post"): "trigger",
    ("api:jobrun-cancel", "post"): "trigger",
    ("api:jobrun-retry", "post"): "trigger",
    ("api:schedule-trigger", "post"): "trigger",
    ("api:schedule-pause", "post"): "change Schedule",
    ("api:schedule-resume", "post"): "change Schedule",
    ("api:schedulerconfig-list", "post"): "schedulers",
    ("api:schedulerconfig-detail", "put"): "schedulers",
    ("api:schedulerconfig-detail", "patch"): "schedulers",
    ("api:schedulerconfig-detail", "delete"): "schedulers",
    ("api:alert-acknowledge", "post"): "change Alert",
    ("api:alert-resolve", "post"): "change Alert",
    ("api:titlechange-acknowledge", "post"): "change TitleChange",
    ("api:titlechange-resolve", "post"): "change TitleChange",
    ("api:report-list", "post"): "report",
    ("api:periodicjob-list", "post"): "change PeriodicJob",
    ("api:periodicjob-detail", "put"): "change PeriodicJob",
    ("api:periodicjob-detail", "patch"): "change PeriodicJob",
    ("api:periodicjob-detail", "delete"): "change PeriodicJob",
    ("api:periodicjob-enable", "post"): "change PeriodicJob",
    ("api:periodicjob-disable", "post"): "change PeriodicJob",
    ("api:periodicjob-trigger", "post"): "run PeriodicJob",
    # Pausing all scheduling asks the tier table's permission, in both doors.
    ("api:scheduler-pause", "post"): "schedulers",
    ("api:scheduler-resume", "post"): "schedulers",
    ("api:webhookevent-replay", "post"): "change Notification",
    ("api:webhookendpoint-replay-failed", "post"): "change WebhookEndpoint",
}


def admin_allows(client, probe: str) -> bool:
    url, action = ADMIN_PROBES[probe]
    response = client.get(url)
    if response.status_code != 200:
        return False
    return action is None or f'<option value="{action}">' in response.content.decode()


def test_every_write_has_an_admin_probe():
    assert set(PROBE_OF) == set(WRITES)


@pytest.mark.parametrize("who", [w for w in USERS_AND_ANONYMOUS if w != "owner"])
def test_the_admin_answers_each_user_as_the_api_does_about_other_peoples_objects(client, who, tier_configs):
    """Everyone but the owner acts on someone else's objects: there both doors ask the same permissions."""
    owner_subscription = SubscriptionFactory(user=UserFactory(username="alice"))
    # A row on each changelist, so the actions are offered at all.
    ScheduleFactory(subscription=owner_subscription)
    AlertFactory(subscription=owner_subscription)
    TitleChangeFactory(property=PropertyFactory(subscription=owner_subscription))
    ReportFactory(subscription=owner_subscription, kind="monthly", period_start="2026-10-01", period_end="2026-10-31")
    _customer_job(owner_subscription)
    failed_webhook_event(owner_subscription)
    user = make_user(who)
    if user is not None:
        client.force_login(user)
    api_answers = {PROBE_OF[endpoint]: who in ALLOWED[write.rule] for endpoint, write in WRITES.items()}
    admin_answers = {probe: admin_allows(client, probe) for probe in ADMIN_PROBES}
    assert admin_answers == api_answers


# --- reads: the same rule decides who sees everyone's rows ----------------------------------


LISTS = ("jobs", "schedules", "alerts", "title-changes", "reports", "subscriptions")


@pytest.mark.parametrize("who", ["staff_without_permissions", "operator"])
def test_staff_see_other_peoples_rows_only_with_the_view_permission_as_in_the_admin(client, who):
    owner_subscription = SubscriptionFactory(user=UserFactory(username="alice"))
    JobRunFactory(subscription=owner_subscription)
    ScheduleFactory(subscription=owner_subscription)
    AlertFactory(subscription=owner_subscription)
    TitleChangeFactory(property=PropertyFactory(subscription=owner_subscription))
    report = ReportFactory(subscription=owner_subscription, period_start="2026-10-01", period_end="2026-10-31")
    user = make_user(who)
    api = client_for(user)
    client.force_login(user)
    sees = who == "operator"
    for name in LISTS:
        assert (api.get(f"/api/v1/{name}/").json()["count"] > 0) == sees, name
    assert (api.get(f"/api/v1/reports/{report.pk}/").status_code == 200) == sees
    assert (api.get("/api/v1/stats/").status_code == 200) == sees
    for admin_list in ("jobs/jobrun", "jobs/schedule", "scanners/alert", "reports/report", "kordant/subscription"):
        assert (client.get(f"/admin/{admin_list}/").status_code == 200) == sees, admin_list


def test_api_changes_show_in_the_objects_admin_history(client):
    scheduler = make_user("operator_with_schedulers")
    created = client_for(scheduler).post(
        "/api/v1/scheduler-configs/", {"tier": "basic", "job_type": "jobs.ping", "frequency": "daily"}, format="json"
    )
    config_id = created.json()["id"]
    client_for(scheduler).patch(f"/api/v1/scheduler-configs/{config_id}/", {"frequency": "weekly"}, format="json")
    client.force_login(scheduler)
    history = client.get(reverse("admin:jobs_schedulerconfig_history", args=[config_id])).content.decode()
    assert "Added through the API." in history
    assert "Changed frequency through the API." in history


# --- any mix of flags and permissions: the decisions agree with what the admin asks -----------

PERMISSION_POOL = (
    ("jobs", "view_jobrun"),
    ("jobs", "trigger_jobrun"),
    ("jobs", "view_schedule"),
    ("jobs", "change_schedule"),
    ("jobs", "view_schedulerconfig"),
    ("jobs", "change_schedulerconfig"),
    ("jobs", "schedulers"),
    ("scanners", "view_alert"),
    ("scanners", "change_alert"),
    ("scanners", "change_titlechange"),
    ("reports", "view_report"),
    ("kordant", "change_subscription"),
    ("django_rq", "admin"),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    flags=st.fixed_dictionaries({"is_staff": st.booleans(), "is_active": st.booleans(), "is_superuser": st.booleans()}),
    granted=st.sets(st.sampled_from(PERMISSION_POOL)),
    via_group=st.booleans(),
)
def test_each_decision_answers_as_the_admin_for_any_flags_and_permissions(flags, granted, via_group, rf):
    from django.contrib import admin
    from django.contrib.auth.models import Group, Permission
    from django_rq.models import Dashboard

    from jobs import operators
    from kordant.models import Subscription
    from reports.models import Report

    user = UserFactory(**flags)
    permissions = [Permission.objects.get(content_type__app_label=app, codename=code) for app, code in granted]
    if via_group:
        group = Group.objects.create(name=f"g{user.pk}")
        group.permissions.add(*permissions)
        user.groups.add(group)
    else:
        user.user_permissions.add(*permissions)
    user = type(user).objects.get(pk=user.pk)  # no cached permissions
    request = rf.get("/admin/")
    request.user = user
    site = admin.site
    enters = site.has_permission(request)

    def model_admin(model):
        return site._registry[model]

    assert operators.may_trigger_runs(user) == (enters and model_admin(JobRun).has_trigger_permission(request))
    assert operators.may_edit_scheduler_configs(user) == (
        enters and model_admin(SchedulerConfig).has_add_permission(request)
    )
    for model in (JobRun, Schedule, SchedulerConfig, Alert, TitleChange, Report, Subscription):
        assert operators.may_view_all(user, model) == (enters and model_admin(model).has_view_permission(request))
    for model in (Schedule, Alert, TitleChange):
        stock = admin.ModelAdmin.has_change_permission(model_admin(model), request)
        assert operators.may_change_others(user, model) == (enters and stock), model
    assert operators.may_view_rq_dashboard(user) == (enters and model_admin(Dashboard).has_module_permission(request))


def test_a_write_that_returns_the_existing_run_logs_nothing_new(tier_configs):
    owner_subscription = SubscriptionFactory(user=UserFactory(username="alice"))
    owner, operator = owner_subscription.user, make_user("operator")
    report = {"subscription": owner_subscription.pk, "period_start": "2026-10-01", "period_end": "2026-10-31"}
    job = {"job_type": "jobs.ping", "payload": {"message": "hi"}, "dedupe_key": "once"}
    for _ in range(2):
        assert client_for(owner).post("/api/v1/reports/", report, format="json").status_code == 202
        assert client_for(operator).post("/api/v1/jobs/", job, format="json").status_code in (200, 201)
    assert JobRun.objects.count() == 2
    assert LogEntry.objects.filter(user=owner).count() == 1
    assert LogEntry.objects.filter(user=operator).count() == 1


def test_the_trigger_permission_without_the_view_permission_acts_on_no_one_elses_run_in_either_door(client):
    from django.contrib.auth.models import Permission

    run = JobRunFactory(subscription=SubscriptionFactory(), status=Status.QUEUED)
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="trigger_jobrun"))
    assert client_for(user).post(f"/api/v1/jobs/{run.pk}/cancel/").status_code == 404
    client.force_login(user)
    assert client.post(f"/admin/jobs/jobrun/{run.pk}/do/cancel/").status_code == 403
    run.refresh_from_db()
    assert run.status == Status.QUEUED and not LogEntry.objects.exists()
