"""The operator console through Django's test client: pages, actions, permissions, query counts."""

import re

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from api.services import api_token_issue
from jobs import dispatch, enqueue
from jobs.models import JobEvent, JobRun, Schedule, SchedulerConfig
from jobs.operators import OPERATORS_GROUP
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
Status = JobRun.Status


@pytest.fixture
def operator(db):
    user = UserFactory(username="olive", is_staff=True)
    user.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    return user


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def plain_staff_client(client):
    client.force_login(UserFactory(username="sam", is_staff=True))
    return client


def failed_run(run_worker, message="boom"):
    run = enqueue("tests.permanent", {"message": message})
    run_worker()
    run.refresh_from_db()
    assert run.status == Status.FAILED
    return run


def action(client, url, name, objects, follow=False, **extra):
    data = {"action": name, "_selected_action": [str(obj.pk) for obj in objects], **extra}
    return client.post(url, data, follow=follow)


# --- every page -------------------------------------------------------------------------


@pytest.fixture
def seeded(tmp_path, run_worker, tier_configs, settings):
    """A row in every table the admin shows, made the way the product makes them."""
    from jobs.demo import demo_data_ensure
    from notifications.models import NotificationPreference, WebhookDelivery, WebhookEndpoint
    from notifications.services import notify_staff
    from reports.models import Report
    from scanners.demo import scanners_demo_ensure
    from scanners.removebrokers.demo import removebrokers_demo_ensure
    from scanners.voiceprint.models import AnalysisJob, VoiceProfile, VoiceSample

    settings.REMOVEBROKERS_DEMO_URL = "http://127.0.0.1:9"  # nothing listens: requests stay due, rows exist
    demo_data_ensure()
    scanners_demo_ensure(tmp_path)
    removebrokers_demo_ensure()
    run_worker()
    failed_run(run_worker)
    staffer = UserFactory(username="staffer", is_staff=True, email="staffer@example.com")
    api_token_issue(staffer)  # the API's tokens (api.models.APIToken, stored hashed)
    notify_staff("jobs.failed", {"job_run_id": "x", "job_type": "tests.fail", "error": "boom"})
    subscription = SubscriptionFactory()
    NotificationPreference.objects.create(user=subscription.user, channel="sms", address="+15555550100")
    endpoint = WebhookEndpoint.objects.create(owner=subscription.user, url="https://hooks.example.com/k")
    notification = notify_staff("jobs.failed", {"job_run_id": "y", "job_type": "tests.fail", "error": "boom"})[0]
    WebhookDelivery.objects.create(endpoint=endpoint, notification=notification, attempt=1, succeeded=False)
    Report.objects.create(subscription=subscription, kind="monthly", period_start="2026-10-01", period_end="2026-10-31")
    profile = VoiceProfile.objects.create(
        subscription=subscription,
        model_name="features-v1",
        embedding=[0.0] * 4,
        sample_count=1,
        speech_seconds=8.0,
        enrolled_at=timezone.now(),
    )
    sample = VoiceSample.objects.create(subscription=subscription, file="voice/x.wav", original_name="x.wav")
    AnalysisJob.objects.create(sample=sample)
    from jobs.periodic import periodic_job_create

    periodic_job_create(
        name="seeded ping", job_type="jobs.ping", payload={"message": "hi"}, cron_expression="0 4 * * *"
    )
    return profile


def test_every_changelist_and_change_page_answers_200_for_staff(admin_client, seeded):
    empty = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        if opts.app_label == "django_rq":
            continue  # django-rq's dashboard, not a table; tested below
        changelist = admin_client.get(f"/admin/{opts.app_label}/{opts.model_name}/")
        assert changelist.status_code == 200, f"{opts.label} changelist: {changelist.status_code}"
        obj = model_admin.get_queryset(changelist.wsgi_request).first()
        if obj is None:
            empty.append(opts.label)
            continue
        page = admin_client.get(f"/admin/{opts.app_label}/{opts.model_name}/{obj.pk}/change/")
        assert page.status_code == 200, f"{opts.label} change page: {page.status_code}"
    assert empty == [], f"seed these too: {empty}"
    assert admin_client.get("/admin/rq/").status_code == 200
    index = admin_client.get("/admin/").content.decode()
    assert "/admin/jobs/jobrun/dashboard/" in index and "/admin/rq/" in index


def test_operators_see_every_changelist_but_no_add_or_edit(operator_client, seeded):
    for model in admin.site._registry:
        opts = model._meta
        if opts.app_label in ("django_rq", "auth", "api"):
            # Accounts and API tokens are credentials: who has access is not an operator's call.
            assert (
                opts.app_label == "django_rq"
                or operator_client.get(f"/admin/{opts.app_label}/{opts.model_name}/").status_code == 403
            )
            continue
        assert operator_client.get(f"/admin/{opts.app_label}/{opts.model_name}/").status_code == 200, opts.label
    config = SchedulerConfig.objects.first()
    assert operator_client.get(f"/admin/jobs/schedulerconfig/{config.pk}/change/").status_code == 200
    assert operator_client.get("/admin/jobs/schedulerconfig/add/").status_code == 403
    edit = operator_client.post(f"/admin/jobs/schedulerconfig/{config.pk}/change/", {"enabled": ""})
    assert edit.status_code == 403


def test_secrets_and_identifiers_never_appear_whole(admin_client, seeded):
    from notifications.models import WebhookEndpoint
    from scanners.darkwatch.identifiers import mask
    from scanners.darkwatch.models import WatchlistItem

    endpoint = WebhookEndpoint.objects.get()
    page = admin_client.get(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert endpoint.secret not in page
    item = WatchlistItem.objects.first()
    listing = admin_client.get("/admin/scanners/watchlistitem/").content.decode()
    assert item.value not in listing and item.masked in listing
    from scanners.removebrokers.models import RemovalRequest

    removal = next(r for r in RemovalRequest.objects.all() if r.person.get("email"))
    page = admin_client.get(f"/admin/scanners/removalrequest/{removal.pk}/change/").content.decode()
    assert removal.person["email"] not in page and removal.person["full_name"] not in page
    assert mask("email", removal.person["email"]) in page


# --- runs -------------------------------------------------------------------------------


def test_a_run_page_shows_status_progress_links_timeline_and_the_traceback(admin_client, run_worker):
    run = enqueue("tests.fail", {"message": "provider exploded"})
    JobRun.objects.filter(pk=run.pk).update(max_attempts=1)
    run_worker()
    page = admin_client.get(f"/admin/jobs/jobrun/{run.pk}/change/").content.decode()
    assert 'class="kj-badge kj-failed"' in page
    assert "provider exploded" in page and 'class="kj-traceback"' in page and "RuntimeError" in page
    assert "1 of 1" in page  # attempts
    assert page.count("kj-badge kj-") >= 4  # the timeline: pending, queued, running, failed
    assert 'http-equiv="refresh"' not in page  # a finished run's page stays still
    assert "kj-retry" in page


def test_an_active_run_page_reloads_itself_and_links_its_schedule_and_subscription(admin_client, tier_configs):
    subscription = SubscriptionFactory()
    schedule = Schedule.objects.filter(subscription=subscription).first()
    from jobs.scheduling import schedule_trigger_now

    run = schedule_trigger_now(schedule)
    page = admin_client.get(f"/admin/jobs/jobrun/{run.pk}/change/").content.decode()
    assert 'http-equiv="refresh"' in page
    assert f"/admin/jobs/schedule/{schedule.pk}/change/" in page
    assert f"/admin/kordant/subscription/{subscription.pk}/change/" in page


def test_retry_cancel_and_run_again_do_what_they_say_and_are_logged(admin_client, run_worker):
    failed = failed_run(run_worker, "first try")
    waiting = enqueue("jobs.ping", {"message": "later"}, delay=3600)
    done = enqueue("jobs.ping", {"message": "again please"})
    run_worker()

    action(admin_client, "/admin/jobs/jobrun/", "retry", [failed])
    failed.refresh_from_db()
    assert failed.status == Status.QUEUED and failed.attempt == 0
    assert JobEvent.objects.filter(job_run=failed, message__contains="retried by hand by admin").exists()

    action(admin_client, "/admin/jobs/jobrun/", "cancel", [waiting])
    waiting.refresh_from_db()
    assert waiting.status == Status.CANCELLED and waiting.cancel_reason == "cancelled by admin"

    action(admin_client, "/admin/jobs/jobrun/", "run_again", [done])
    copy = JobRun.objects.filter(job_type="jobs.ping").exclude(pk__in=[waiting.pk, done.pk]).get()
    assert (copy.job_type, copy.payload, copy.trigger) == ("jobs.ping", {"message": "again please"}, "manual")
    run_worker()
    copy.refresh_from_db()
    assert copy.status == Status.COMPLETED

    logged = set(LogEntry.objects.values_list("object_id", "change_message"))
    assert (str(failed.pk), "Retried from the admin.") in logged
    assert (str(waiting.pk), "Cancelled from the admin.") in logged
    assert (str(done.pk), "Copied from the admin.") in logged


def test_retrying_a_completed_run_is_refused_with_a_reason(admin_client, run_worker):
    run = enqueue("jobs.ping", {"message": "fine"})
    run_worker()
    response = action(admin_client, "/admin/jobs/jobrun/", "retry", [run], follow=True)
    assert "only failed or cancelled runs can be retried" in response.content.decode()
    run.refresh_from_db()
    assert run.status == Status.COMPLETED


def test_the_run_page_buttons_retry_and_run_again(admin_client, run_worker):
    run = failed_run(run_worker)
    response = admin_client.post(f"/admin/jobs/jobrun/{run.pk}/do/retry/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == Status.QUEUED
    response = admin_client.post(f"/admin/jobs/jobrun/{run.pk}/do/run_again/")
    copy = JobRun.objects.filter(job_type=run.job_type).exclude(pk=run.pk).get()
    assert response["Location"] == f"/admin/jobs/jobrun/{copy.pk}/change/"
    assert admin_client.get(f"/admin/jobs/jobrun/{run.pk}/do/retry/").status_code == 405


def changelist_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_run_changelist_costs_the_same_queries_for_5_or_60_rows_and_any_page_size(admin_client, tier_configs):
    subscription = SubscriptionFactory()
    schedule = Schedule.objects.filter(subscription=subscription).first()

    def make(n):
        for i in range(n):
            enqueue(
                "jobs.ping", {"message": str(i)}, user=subscription.user, subscription=subscription, schedule=schedule
            )

    make(5)
    few = changelist_queries(admin_client, "/admin/jobs/jobrun/")
    make(55)
    many = changelist_queries(admin_client, "/admin/jobs/jobrun/")
    small_page = changelist_queries(admin_client, "/admin/jobs/jobrun/?status=queued&p=1")
    assert few == many, (few, many)
    assert small_page <= many + 1
    assert changelist_queries(admin_client, "/admin/jobs/schedule/") == changelist_queries(
        admin_client, "/admin/jobs/schedule/?enabled__exact=1"
    )


def test_a_page_of_50_runs_and_a_page_of_10_cost_the_same(admin_client, monkeypatch):
    from jobs.admin import JobRunAdmin

    for i in range(60):
        enqueue("jobs.ping", {"message": str(i)}, user=UserFactory())
    fifty = changelist_queries(admin_client, "/admin/jobs/jobrun/")
    monkeypatch.setattr(JobRunAdmin, "list_per_page", 10)
    ten = changelist_queries(admin_client, "/admin/jobs/jobrun/")
    assert fifty == ten


# --- the enqueue page -------------------------------------------------------------------


def test_the_enqueue_page_makes_a_form_from_the_payload_schema(admin_client):
    page = admin_client.get("/admin/jobs/jobrun/enqueue/?job_type=tests.block").content.decode()
    assert 'name="payload-name"' in page and 'name="payload-seconds"' in page and 'name="payload-key"' in page
    assert 'name="options-priority"' in page and 'name="options-at"' in page


def test_field_errors_show_inline_and_nothing_is_enqueued(admin_client):
    response = admin_client.post(
        "/admin/jobs/jobrun/enqueue/?job_type=tests.block", {"payload-seconds": "soon", "options-priority": ""}
    )
    assert response.status_code == 200
    assert "Enter a number." in response.content.decode()
    response = admin_client.post("/admin/jobs/jobrun/enqueue/?job_type=jobs.ping", {"payload-message": ""})
    assert "This field is required." in response.content.decode()
    assert not JobRun.objects.exists()


def test_a_schema_error_only_pydantic_knows_is_shown_next_to_its_field(admin_client):
    url = "/admin/jobs/jobrun/enqueue/?job_type=tests.strict"
    page = admin_client.get(url).content.decode()
    assert 'name="payload-count"' in page and 'max="10"' in page and "Three capital letters" in page
    # The form has no pattern rule; pydantic's refusal lands next to the field all the same.
    response = admin_client.post(url, {"payload-code": "abc", "payload-count": "2"}).content.decode()
    assert "String should match pattern" in response
    errors_before_code_field = response.split('name="payload-code"')[0].rsplit('<div class="form-row">', 1)[1]
    assert "String should match pattern" in errors_before_code_field
    bad_queue = admin_client.post(url, {"payload-code": "ABC", "options-priority": "nope"}).content.decode()
    assert "Select a valid choice" in bad_queue
    assert not JobRun.objects.exists()
    admin_client.post(url, {"payload-code": "ABC", "payload-count": "2"})
    assert JobRun.objects.get().payload == {"code": "ABC", "count": 2}


def test_enqueue_now_or_at_a_time_with_a_priority(admin_client, run_worker):
    response = admin_client.post(
        "/admin/jobs/jobrun/enqueue/?job_type=jobs.ping",
        {"payload-message": "from the form", "options-priority": "high"},
    )
    run = JobRun.objects.get()
    assert response["Location"] == f"/admin/jobs/jobrun/{run.pk}/change/"
    assert (run.payload, run.queue, run.trigger, run.user.username) == (
        {"message": "from the form"},
        "high",
        "manual",
        "admin",
    )
    run_worker()
    run.refresh_from_db()
    assert run.status == Status.COMPLETED

    admin_client.post(
        "/admin/jobs/jobrun/enqueue/?job_type=jobs.ping",
        {"payload-message": "tomorrow", "options-at": "2099-01-02T03:04"},
    )
    later = JobRun.objects.get(payload__message="tomorrow")
    assert later.scheduled_for.isoformat() == "2099-01-02T03:04:00+00:00"
    assert LogEntry.objects.filter(object_id=str(later.pk), change_message="Enqueued from the admin.").exists()


# --- schedules and the tier table -------------------------------------------------------


def test_schedule_page_shows_next_run_in_its_zone_and_utc_and_the_actions_work(admin_client, tier_configs, run_worker):
    subscription = SubscriptionFactory(timezone="America/New_York")
    schedule = Schedule.objects.filter(subscription=subscription, config__job_type="darkwatch.scan").get()
    listing = admin_client.get("/admin/jobs/schedule/").content.decode()
    local = schedule.next_run_at.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert f"{local:%Y-%m-%d %H:%M} E" in listing  # EST or EDT
    assert f"{schedule.next_run_at:%Y-%m-%d %H:%M} UTC" in listing

    action(admin_client, "/admin/jobs/schedule/", "disable", [schedule])
    schedule.refresh_from_db()
    assert not schedule.enabled and schedule.next_run_at is None
    action(admin_client, "/admin/jobs/schedule/", "enable", [schedule])
    schedule.refresh_from_db()
    assert schedule.enabled and schedule.next_run_at is not None

    action(admin_client, "/admin/jobs/schedule/", "run_now", [schedule])
    run = JobRun.objects.get(schedule=schedule)
    assert run.trigger == "manual" and run.user.username == "admin"


def test_config_page_describes_the_cron_and_previews_five_runs(admin_client):
    config = SchedulerConfig.objects.create(tier="plus", job_type="jobs.ping", cron_expression="17 3 * * 1")
    page = admin_client.get(f"/admin/jobs/schedulerconfig/{config.pk}/change/").content.decode()
    assert "At 03:17, only on Monday" in page
    assert page.count("<li>") >= 5 and 'class="kj-preview"' in page
    assert "03:17 UTC" in page


def test_a_bad_cron_or_both_timings_are_refused_in_the_form(admin_client):
    base = {"tier": "plus", "job_type": "jobs.ping", "enabled": "on", "overlap": "skip", "priority": ""}
    bad = admin_client.post("/admin/jobs/schedulerconfig/add/", {**base, "cron_expression": "61 * * * *"})
    assert "is not a valid five-field cron expression" in bad.content.decode()
    both = admin_client.post(
        "/admin/jobs/schedulerconfig/add/", {**base, "cron_expression": "* * * * *", "frequency": "daily"}
    )
    assert "not both and not neither" in both.content.decode()
    assert not SchedulerConfig.objects.exists()


def test_run_now_for_the_tier_asks_first_saying_how_many_runs(admin_client, tier_configs):
    for _ in range(3):
        SubscriptionFactory(tier="premium")
    SubscriptionFactory(tier="basic")
    config = SchedulerConfig.objects.get(tier="premium", job_type="darkwatch.scan")
    before = JobRun.objects.count()

    ask = action(admin_client, "/admin/jobs/schedulerconfig/", "run_for_tier", [config])
    assert ask.status_code == 200
    assert 'id="kj-total">3<' in ask.content.decode()
    assert JobRun.objects.count() == before

    done = action(admin_client, "/admin/jobs/schedulerconfig/", "run_for_tier", [config], confirm="yes", follow=True)
    assert "Started 3 runs." in done.content.decode()
    runs = JobRun.objects.filter(job_type="darkwatch.scan", trigger="manual")
    assert runs.count() == 3 and {run.subscription.tier for run in runs} == {"premium"}


def test_enabling_and_disabling_a_config_moves_its_schedules(admin_client, tier_configs):
    subscription = SubscriptionFactory(tier="plus")
    config = SchedulerConfig.objects.get(tier="plus", job_type="darkwatch.scan")
    action(admin_client, "/admin/jobs/schedulerconfig/", "disable", [config])
    config.refresh_from_db()
    assert not config.enabled
    assert Schedule.objects.get(subscription=subscription, config=config).next_run_at is None
    action(admin_client, "/admin/jobs/schedulerconfig/", "enable", [config])
    assert Schedule.objects.get(subscription=subscription, config=config).next_run_at is not None


def test_staff_pause_a_schedule_from_its_page(admin_client, redis_conn):
    from jobs import entries

    config = SchedulerConfig.objects.create(tier="plus", job_type="jobs.ping", frequency="daily")
    schedule = Schedule.objects.get(subscription=SubscriptionFactory(tier="plus"), config=config)
    response = admin_client.post(f"/admin/jobs/schedule/{schedule.pk}/change/", {})  # "enabled" unticked
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert not schedule.enabled and schedule.next_run_at is None
    assert redis_conn.zscore(entries.SCHEDULED_KEY, schedule.entry_id) is None


# --- permissions ------------------------------------------------------------------------


def test_the_operators_group_views_everything_and_triggers_but_edits_no_config():
    group = Group.objects.get(name=OPERATORS_GROUP)
    codenames = set(group.permissions.values_list("content_type__app_label", "codename"))
    assert ("jobs", "trigger_jobrun") in codenames
    assert {("jobs", "view_jobrun"), ("jobs", "view_schedulerconfig"), ("scanners", "view_alert")} <= codenames
    assert not {codename for _, codename in codenames if codename.startswith(("change_", "add_", "delete_"))}
    assert ("jobs", "schedulers") not in codenames


def test_operators_retry_runs_and_pause_queues_but_cannot_touch_configs(operator_client, run_worker, tier_configs):
    run = failed_run(run_worker)
    action(operator_client, "/admin/jobs/jobrun/", "retry", [run])
    run.refresh_from_db()
    assert run.status == Status.QUEUED

    assert operator_client.post("/admin/jobs/jobrun/queues/low/pause/").status_code == 302
    assert dispatch.redis_connection().sismember(dispatch.PAUSED_QUEUES_KEY, "low")

    config = SchedulerConfig.objects.get(tier="plus", job_type="darkwatch.scan")
    action(operator_client, "/admin/jobs/schedulerconfig/", "disable", [config])
    config.refresh_from_db()
    assert config.enabled  # the action is not even offered to them
    assert operator_client.post(f"/admin/jobs/schedulerconfig/{config.pk}/delete/", {"post": "yes"}).status_code == 403
    assert SchedulerConfig.objects.filter(pk=config.pk).exists()


def test_staff_without_permissions_are_refused_the_console(plain_staff_client, run_worker):
    run = failed_run(run_worker)
    assert plain_staff_client.get("/admin/jobs/jobrun/dashboard/").status_code == 403
    assert plain_staff_client.get("/admin/jobs/jobrun/enqueue/").status_code == 403
    assert plain_staff_client.post("/admin/jobs/jobrun/queues/low/pause/").status_code == 403
    assert plain_staff_client.post(f"/admin/jobs/jobrun/{run.pk}/do/retry/").status_code == 403
    assert plain_staff_client.get("/admin/jobs/jobrun/").status_code == 403
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert not dispatch.redis_connection().sismember(dispatch.PAUSED_QUEUES_KEY, "low")


def test_viewers_without_the_trigger_permission_see_runs_but_cannot_act(client, run_worker):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_jobrun"))
    client.force_login(viewer)
    run = failed_run(run_worker)
    assert client.get("/admin/jobs/jobrun/dashboard/").status_code == 200
    assert client.get("/admin/jobs/jobrun/enqueue/").status_code == 403
    assert client.post(f"/admin/jobs/jobrun/{run.pk}/do/retry/").status_code == 403
    action(client, "/admin/jobs/jobrun/", "retry", [run])
    run.refresh_from_db()
    assert run.status == Status.FAILED


def test_holders_of_the_schedulers_permission_edit_configs(client, operator):
    operator.user_permissions.add(Permission.objects.get(codename="schedulers"))
    client.force_login(operator)
    config = SchedulerConfig.objects.create(tier="plus", job_type="jobs.ping", frequency="daily")
    response = client.post(
        f"/admin/jobs/schedulerconfig/{config.pk}/change/",
        # A timing change asks first (tests/jobs/test_forecast_admin.py); this is the confirmed post.
        {
            "tier": "plus",
            "job_type": "jobs.ping",
            "frequency": "weekly",
            "overlap": "skip",
            "priority": "",
            "_confirm_timing": "yes",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    config.refresh_from_db()
    assert config.frequency == "weekly" and not config.enabled
    assert LogEntry.objects.filter(object_id=str(config.pk), user=operator).exists()


def test_non_staff_are_sent_to_login(client):
    assert client.get("/admin/jobs/jobrun/").status_code == 302
    assert client.get("/admin/jobs/jobrun/dashboard/").status_code == 302


# --- the dashboard ----------------------------------------------------------------------


def test_the_dashboard_shows_counts_chart_queues_workers_and_scheduler(admin_client, run_worker):
    enqueue("jobs.ping", {"message": "ok"})
    failed_run(run_worker)
    enqueue("jobs.ping", {"message": "waiting"}, priority="low")
    from jobs.scheduling import scheduler_heartbeat_write

    scheduler_heartbeat_write("sched-1", last_pass_seconds=0.012, fired=3)
    admin_client.post("/admin/jobs/jobrun/queues/low/pause/")

    page = admin_client.get("/admin/jobs/jobrun/dashboard/").content.decode()
    assert '<meta http-equiv="refresh" content="5">' in page
    assert "<svg" in page and page.count('class="overlay"') == 1  # one hour had a failure
    assert f"Runs created in the last 24 hours: {JobRun.objects.count()}" in page
    assert 'kj-count-failed"><a href="/admin/jobs/jobrun/?status=failed">failed</a><div class="kj-num">1<' in page
    assert 'kj-queue-low"><td>low</td><td class="kj-depth">1</td>' in page
    assert '<span class="kj-paused">paused</span>' in page and ">Resume<" in page
    assert "sched-1" in page and "fired 3" in page
    assert "tests.permanent" in page and "100%" in page
    assert "Workers online: 0" in page
    assert 'href="/admin/rq/"' in page


# --- issue 15: broken timing, schedulable types, a schedule waiting on its config ------------


@pytest.mark.parametrize("cron", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6 *"])
def test_a_cron_whose_dates_never_occur_is_a_field_error_in_the_form(admin_client, cron):
    base = {"tier": "plus", "job_type": "jobs.ping", "enabled": "on", "overlap": "skip", "priority": ""}
    response = admin_client.post("/admin/jobs/schedulerconfig/add/", {**base, "cron_expression": cron})
    assert response.status_code == 200  # the form again, not a 500
    assert "never runs" in response.content.decode()
    assert not SchedulerConfig.objects.filter(job_type="jobs.ping").exists()


def test_the_config_form_offers_only_types_that_can_run_on_a_schedule(admin_client, tier_configs):
    page = admin_client.get("/admin/jobs/schedulerconfig/add/").content.decode()
    assert 'value="darkwatch.scan"' in page and 'value="reports.generate"' in page
    assert 'value="notifications.send"' not in page and 'value="jobs.prune"' not in page
    base = {"tier": "plus", "enabled": "on", "overlap": "skip", "priority": "", "frequency": "daily"}
    refused = admin_client.post("/admin/jobs/schedulerconfig/add/", {**base, "job_type": "notifications.send"})
    assert refused.status_code == 200
    assert not SchedulerConfig.objects.filter(job_type="notifications.send").exists()


def test_broken_schedules_are_shown_and_filtered(admin_client, tier_configs, redis_conn):
    basic, plus = SubscriptionFactory(tier="basic"), SubscriptionFactory(tier="plus")
    SchedulerConfig.objects.filter(tier="basic", job_type="darkwatch.scan").update(
        frequency="", cron_expression="0 0 31 4 *"
    )
    from jobs.scheduling import schedules_sync_all

    schedules_sync_all()
    broken = Schedule.objects.get(subscription=basic, config__job_type="darkwatch.scan")

    listed = admin_client.get("/admin/jobs/schedule/?state=broken")
    assert listed.status_code == 200
    assert list(listed.context["cl"].result_list) == [broken]
    assert "Broken: no next run" in listed.content.decode()
    assert Schedule.objects.filter(subscription=plus).count() == len(
        admin_client.get("/admin/jobs/schedule/?state=active&subscription__id__exact=" + str(plus.pk))
        .context["cl"]
        .result_list
    )
    page = admin_client.get(f"/admin/jobs/schedule/{broken.pk}/change/").content.decode()
    assert "never fires" in page
    config_page = admin_client.get(f"/admin/jobs/schedulerconfig/{broken.config_id}/change/")
    assert config_page.status_code == 200  # was a 500: the preview raised
    assert "Never runs" in config_page.content.decode()
    # Disabling the broken config works (its save does not re-validate the timing it keeps).
    action(admin_client, "/admin/jobs/schedulerconfig/", "disable", [broken.config])
    assert not SchedulerConfig.objects.get(pk=broken.config_id).enabled


def test_a_resumed_schedule_of_a_disabled_config_shows_it_waits(admin_client, tier_configs):
    subscription = SubscriptionFactory(tier="plus")
    config = SchedulerConfig.objects.get(tier="plus", job_type="darkwatch.scan")
    schedule = Schedule.objects.get(subscription=subscription, config=config)
    action(admin_client, "/admin/jobs/schedulerconfig/", "disable", [config])
    action(admin_client, "/admin/jobs/schedule/", "disable", [schedule])
    action(admin_client, "/admin/jobs/schedule/", "enable", [schedule])

    listed = admin_client.get("/admin/jobs/schedule/?state=waiting_for_config")
    assert list(listed.context["cl"].result_list) == [schedule]
    assert "Waiting for its config (disabled)" in listed.content.decode()


def test_a_schedule_that_fired_links_its_last_run_in_the_list_and_on_its_page(admin_client, tier_configs):
    """Issue 17.1: the list answered 500 once a schedule had fired, and its page showed "-"."""
    from datetime import timedelta

    from jobs.scheduling import schedules_fire

    subscription = SubscriptionFactory(timezone="Asia/Tokyo")
    schedule = Schedule.objects.filter(subscription=subscription).first()
    now = timezone.now()
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=now - timedelta(minutes=1))
    schedules_fire([schedule.pk], now=now)
    schedule.refresh_from_db()
    link = f'<a href="/admin/jobs/jobrun/{schedule.last_run_id}/change/">{schedule.last_run_at:%Y-%m-%d %H:%M} UTC</a>'
    listing = admin_client.get("/admin/jobs/schedule/")
    assert listing.status_code == 200
    assert link in listing.content.decode()
    assert link in admin_client.get(f"/admin/jobs/schedule/{schedule.pk}/change/").content.decode()


def test_the_enqueue_page_labels_fields_in_words_and_lays_them_out_like_the_admin(admin_client):
    page = admin_client.get("/admin/jobs/jobrun/enqueue/?job_type=reports.generate").content.decode()
    assert "Subscription Id" not in page and "Subscription ID" in page
    assert 'class="flex-container"><label for="id_payload-subscription_id" class="required">' in page
    assert page.count('class="form-row"') >= 5


def test_the_enqueue_page_helps_with_each_field_from_the_payload_schemas_description(admin_client):
    from reports.handler import GeneratePayload

    page = admin_client.get("/admin/jobs/jobrun/enqueue/?job_type=reports.generate").content.decode()
    for name, field in GeneratePayload.model_fields.items():
        assert field.description, name  # every field of the schema says what it is for
        assert escape(field.description) in page, name


def test_a_cross_field_error_reads_as_a_sentence_next_to_the_field_it_names(admin_client, tier_configs):
    """Issue 17: "__root__: Value error, period_end is before period_start" above the form."""
    subscription = SubscriptionFactory()
    response = admin_client.post(
        "/admin/jobs/jobrun/enqueue/?job_type=reports.generate",
        {
            "payload-subscription_id": str(subscription.pk),
            "payload-kind": "monthly",
            "payload-period_start": "2026-10-31",
            "payload-period_end": "2026-10-01",
        },
    ).content.decode()
    assert "__root__" not in response and "Value error" not in response
    row = response.split('name="payload-period_end"')[0].rsplit('<div class="form-row">', 1)[1]
    assert "period ends (2026-10-01) before it starts (2026-10-31)" in row
    assert not JobRun.objects.filter(job_type="reports.generate").exists()


def test_timeline_and_schedule_rows_do_not_repeat_their_own_name_and_times_say_their_zone(
    admin_client, tier_configs, run_worker
):
    subscription = SubscriptionFactory(timezone="America/New_York")
    run = enqueue("jobs.ping", {"message": "x"})
    run_worker()
    run_page = admin_client.get(f"/admin/jobs/jobrun/{run.pk}/change/").content.decode()
    assert 'class="module kj-plain-rows"' in run_page and "jobs/plain-rows.css" in run_page
    page = admin_client.get(f"/admin/kordant/subscription/{subscription.pk}/change/").content.decode()
    assert "kj-plain-rows" in page
    schedule = Schedule.objects.filter(subscription=subscription).first()
    assert f"{schedule.next_run_at:%Y-%m-%d %H:%M} UTC" in page
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d E[SD]T", page)
    listing = admin_client.get("/admin/kordant/subscription/").content.decode()
    assert f"{subscription.created_at:%Y-%m-%d %H:%M} UTC" in listing


def test_run_now_says_how_many_runs_it_started(admin_client, tier_configs):
    subscription = SubscriptionFactory()
    schedule = Schedule.objects.filter(subscription=subscription).first()
    done = action(admin_client, "/admin/jobs/schedule/", "run_now", [schedule], follow=True).content.decode()
    assert "Started 1 run." in done and "run now." not in done
