"""Periodic jobs and the scheduling switch in the operator console (issue 18), through the test client."""

from __future__ import annotations

import re
from datetime import UTC
from zoneinfo import ZoneInfo

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from jobs import entries
from jobs.models import JobRun, PeriodicJob, Schedule
from jobs.periodic import periodic_job_create, periodic_job_set_enabled, periodic_job_trigger_now, scheduling_pause
from jobs.selectors import scheduling_paused, scheduling_switch_get
from tests.factories import OperatorFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
PING = {"message": "hi"}
LIST = "/admin/jobs/periodicjob/"


def ping_job(name="ping", **fields) -> PeriodicJob:
    return periodic_job_create(
        **{"name": name, "job_type": "jobs.ping", "payload": PING, "cron_expression": "*/5 * * * *", **fields}
    )


def builtin_job(name="prune", **fields) -> PeriodicJob:
    job = periodic_job_create(
        **{"name": name, "job_type": "jobs.prune", "payload": {}, "cron_expression": "0 3 * * *", **fields}
    )
    PeriodicJob.objects.filter(pk=job.pk).update(builtin=True)  # built-ins come from a data migration
    job.refresh_from_db()
    return job


def fired(job: PeriodicJob, run_worker) -> JobRun:
    """A run of the job's schedule, recorded on it as a tick records it (last run, count, outcome)."""
    from jobs.scheduling import schedules_record_outcomes

    run = periodic_job_trigger_now(job)
    run_worker()
    Schedule.objects.filter(periodic_job=job).update(last_run=run, last_run_at=run.created_at, run_count=1)
    schedules_record_outcomes()
    return run


def action(client, name, objects, follow=False, **extra):
    data = {"action": name, "_selected_action": [str(obj.pk) for obj in objects], **extra}
    return client.post(LIST, data, follow=follow)


@pytest.fixture
def operator_client(client):
    client.force_login(OperatorFactory(username="olive"))
    return client


def form_data(**fields) -> dict:
    """The add/change form as a browser posts it (job type jobs.ping unless said)."""
    data = {
        "name": "nightly ping",
        "job_type": "jobs.ping",
        "payload_for": fields.get("job_type", "jobs.ping"),
        "payload-message": "hello",
        "frequency": "",
        "cron_expression": "0 4 * * *",
        "timezone": "UTC",
        "enabled": "on",
        "priority": "",
        "max_attempts": "",
        "retry_delays": "",
        "overlap": "skip",
        "catch_up": "one",
        "description": "",
        "owner": "",
        "_confirmed": "yes",
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


# --- the list ---------------------------------------------------------------------------------


def test_the_list_shows_the_cron_in_words_next_run_in_its_zone_and_utc_and_the_last_run(admin_client, run_worker):
    job = ping_job(cron_expression="30 4 * * *", timezone="America/New_York")
    run = fired(job, run_worker)
    schedule = Schedule.objects.get(periodic_job=job)
    page = admin_client.get(LIST).content.decode()
    assert "At 04:30" in page
    local = schedule.next_run_at.astimezone(ZoneInfo("America/New_York"))
    assert f"{local:%Y-%m-%d %H:%M} E" in page  # EST or EDT
    assert f"{schedule.next_run_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in page
    # The last run linked, its time formatted before format_html (issue 17.1's 500).
    assert (
        f'<a href="/admin/jobs/jobrun/{run.pk}/change/">{run.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC</a>' in page
    )
    assert 'class="kj-badge kj-completed"' in page
    assert "Runs at its next tick" in page  # the state, as schedules word it


def test_the_list_filters_by_enabled_type_builtin_and_owner_and_searches_by_name(admin_client):
    customer = UserFactory(username="carol")
    ping_job("alpha")
    ping_job("beta", owner=customer)
    builtin_job("prune")
    periodic_job_set_enabled(ping_job("gamma"), False)

    def names(query):
        response = admin_client.get(LIST + query)
        assert response.status_code == 200
        return sorted(job.name for job in response.context["cl"].result_list)

    assert names("?enabled__exact=0") == ["gamma"]
    assert names("?job_type=jobs.prune") == ["prune"]
    assert names("?builtin__exact=1") == ["prune"]
    assert names("?owner=customer") == ["beta"]
    assert names("?owner=none") == ["alpha", "gamma", "prune"]
    assert names("?state=paused") == ["gamma"]
    assert names("?q=alp") == ["alpha"]


def test_the_list_costs_the_same_queries_for_3_or_30_jobs(admin_client, run_worker):
    for i in range(3):
        fired(ping_job(f"job {i}", owner=UserFactory()), run_worker)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(LIST).status_code == 200
        return len(captured)

    few = queries()
    for i in range(3, 30):
        fired(ping_job(f"job {i}", owner=UserFactory()), run_worker)
    assert queries() == few


# --- actions and buttons ------------------------------------------------------------------------


def test_run_now_enable_and_disable_call_the_services_and_are_logged(admin_client):
    job = ping_job()
    pk = job.schedule.pk
    done = action(admin_client, "run_now", [job], follow=True).content.decode()
    assert "Started 1 run." in done
    run = JobRun.objects.get(schedule__periodic_job=job)
    assert (run.trigger, run.user.username) == ("manual", "admin")

    action(admin_client, "disable", [job])
    job.refresh_from_db()
    assert not job.enabled and entries.entries_state([pk])[pk] is None
    action(admin_client, "enable", [job])
    job.refresh_from_db()
    assert job.enabled and entries.entries_state([pk])[pk] is not None
    logged = set(LogEntry.objects.filter(object_id=str(job.pk)).values_list("change_message", flat=True))
    assert {"Run now from the admin.", "Disabled from the admin.", "Enabled from the admin."} <= logged


def test_disabling_a_builtin_job_asks_first(admin_client):
    prune, other = builtin_job(), ping_job()
    ask = action(admin_client, "disable", [prune, other])
    assert ask.status_code == 200
    page = ask.content.decode()
    assert "kj-confirm" in page and "prune" in page
    prune.refresh_from_db()
    other.refresh_from_db()
    assert prune.enabled and other.enabled  # nothing done before the answer
    action(admin_client, "disable", [prune, other], confirm="yes")
    assert not PeriodicJob.objects.filter(enabled=True).exists()

    # The change page's button asks too.
    periodic_job_set_enabled(prune, True)
    ask = admin_client.post(f"{LIST}{prune.pk}/do/disable/")
    assert ask.status_code == 200 and "kj-confirm" in ask.content.decode()
    assert PeriodicJob.objects.get(pk=prune.pk).enabled
    done = admin_client.post(f"{LIST}{prune.pk}/do/disable/", {"confirm": "yes"})
    assert done["Location"] == f"{LIST}{prune.pk}/change/"
    assert not PeriodicJob.objects.get(pk=prune.pk).enabled


def test_the_change_page_buttons_run_now_and_enable(admin_client):
    job = ping_job()
    page = admin_client.get(f"{LIST}{job.pk}/change/").content.decode()
    assert "kj-run-now" in page and "kj-disable" in page
    assert admin_client.post(f"{LIST}{job.pk}/do/run_now/")["Location"] == f"{LIST}{job.pk}/change/"
    assert JobRun.objects.filter(schedule__periodic_job=job, trigger="manual").count() == 1
    admin_client.post(f"{LIST}{job.pk}/do/disable/")  # not built in: no question
    assert not PeriodicJob.objects.get(pk=job.pk).enabled
    assert admin_client.get(f"{LIST}{job.pk}/do/run_now/").status_code == 405
    assert admin_client.post(f"{LIST}{job.pk}/do/explode/").status_code == 404


# --- the change page ----------------------------------------------------------------------------


def test_the_change_page_shows_the_next_five_runs_and_the_history_of_runs(admin_client, run_worker):
    job = ping_job(cron_expression="17 3 * * 1", timezone="Asia/Tokyo")
    runs = [periodic_job_trigger_now(job) for _ in range(23)]
    run_worker()
    page = admin_client.get(f"{LIST}{job.pk}/change/").content.decode()
    assert "At 03:17, only on Monday" in page
    preview = page.split('class="kj-preview"')[1].split("</ol>")[0]
    assert preview.count("<li>") == 5 and "JST" in preview and "UTC" in preview
    history = page.split('class="kj-history"')[1].split("</table>")[0]
    assert f"/admin/jobs/jobrun/{runs[-1].pk}/change/" in history  # latest first
    assert f"/admin/jobs/jobrun/{runs[0].pk}/change/" not in history  # capped
    assert history.count("/admin/jobs/jobrun/") == 20  # the latest 20; a link below lists them all
    all_runs = f"/admin/jobs/jobrun/?schedule__id__exact={job.schedule.pk}"
    assert all_runs in page and "all 23 runs" in page
    listed = admin_client.get(all_runs)
    assert listed.status_code == 200 and len(listed.context["cl"].result_list) == 23


def test_a_periodic_run_links_back_to_its_job(admin_client):
    job = ping_job()
    run = periodic_job_trigger_now(job)
    page = admin_client.get(f"/admin/jobs/jobrun/{run.pk}/change/").content.decode()
    assert f'href="{LIST}{job.pk}/change/"' in page and "periodic job ping" in page


def test_the_schedules_list_is_the_subscriptions_and_renders_beside_periodic_jobs(admin_client, tier_configs):
    SubscriptionFactory()
    job = ping_job()
    response = admin_client.get("/admin/jobs/schedule/")
    assert response.status_code == 200
    assert job.schedule not in list(response.context["cl"].result_list)
    assert response.context["cl"].result_count == Schedule.objects.filter(periodic_job__isnull=True).count()


# --- add and edit -----------------------------------------------------------------------------------


def test_adding_is_two_steps_pick_the_type_then_its_payload_form(admin_client):
    first = admin_client.get(f"{LIST}add/").content.decode()
    assert 'name="job_type"' in first and 'value="jobs.prune"' in first and 'name="payload-' not in first
    form = admin_client.get(f"{LIST}add/?job_type=tests.block").content.decode()
    assert 'name="payload-name"' in form and 'name="payload-key"' in form
    assert 'name="cron_expression"' in form and 'name="timezone"' in form
    assert "null</textarea>" not in form  # no retry policy of its own: an empty box

    response = admin_client.post(
        f"{LIST}add/?job_type=tests.strict",
        form_data(job_type="tests.strict", **{"payload-message": None, "payload-code": "ABC", "payload-count": "3"}),
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    job = PeriodicJob.objects.get()
    assert (job.job_type, job.payload, job.cron_expression) == (
        "tests.strict",
        {"code": "ABC", "count": 3},
        "0 4 * * *",
    )
    assert entries.entries_state([job.schedule.pk])[job.schedule.pk] is not None  # after commit
    assert LogEntry.objects.filter(object_id=str(job.pk), action_flag=1).exists()


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"job_type": "no.such", "payload_for": "no.such"}, "job_type", "Select a valid choice"),
        ({"job_type": "tests.strict", "payload-code": "abc"}, "payload-code", "String should match pattern"),
        ({"payload-message": ""}, "payload-message", "This field is required"),
        ({"cron_expression": "0 0 30 2 *"}, "cron_expression", "never"),
        ({"cron_expression": "61 * * * *"}, "cron_expression", "not a valid five-field cron"),
        ({"cron_expression": ""}, "cron_expression", "not both and not neither"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({"retry_delays": "[-1]"}, "retry_delays", "whole seconds"),
        ({"retry_delays": "[60,"}, "retry_delays", "valid JSON"),
        ({"max_attempts": "0"}, "max_attempts", "Between 1 and 26"),
    ],
)
def test_bad_input_is_an_error_at_its_field_and_nothing_is_saved(admin_client, fields, field, says):
    if fields.get("job_type") == "tests.strict":
        fields = {"payload_for": "tests.strict", "payload-message": None, **fields}
    response = admin_client.post(f"{LIST}add/", form_data(**fields))
    assert response.status_code == 200
    page = response.content.decode()
    row = page.split(f'name="{field}"')[0].rsplit('<div class="form-row', 1)[1]
    assert says in row, row
    assert not PeriodicJob.objects.exists() and not Schedule.objects.exists()


@pytest.mark.parametrize("owned", [False, True])
def test_a_second_job_of_the_same_name_is_refused_at_the_name(admin_client, owned):
    owner = UserFactory() if owned else None
    ping_job("nightly ping", owner=owner)
    page = admin_client.post(f"{LIST}add/", form_data(owner=str(owner.pk) if owned else "")).content.decode()
    row = page.split('name="name"')[0].rsplit('<div class="form-row', 1)[1]
    assert "already exists" in row
    assert PeriodicJob.objects.count() == 1
    # Another owner's job may have the name.
    other = UserFactory()
    assert admin_client.post(f"{LIST}add/", form_data(owner=str(other.pk))).status_code == 302


def test_hostile_input_is_a_clear_answer_and_changes_nothing(admin_client):
    job = ping_job()
    assert admin_client.get(f"{LIST}add/?job_type=%3Cscript%3E").status_code == 200
    assert "<script>" not in admin_client.get(f"{LIST}add/?job_type=%3Cscript%3E").content.decode()
    # A payload posted for another type than it claims, a huge name, a missing job.
    response = admin_client.post(f"{LIST}add/", form_data(payload_for="tests.strict", name="x" * 5000))
    assert response.status_code == 200 and not PeriodicJob.objects.exclude(pk=job.pk).exists()
    assert admin_client.post(f"{LIST}999999/do/run_now/").status_code == 302
    assert not JobRun.objects.exists()
    too_long = admin_client.post(f"{LIST}scheduling/", {"operation": "pause", "reason": "x" * 301})
    assert too_long.status_code == 200 and not scheduling_paused()
    assert admin_client.post(f"{LIST}scheduling/", {"operation": "explode"}).status_code == 200
    assert not scheduling_paused()


def test_choosing_another_job_type_shows_its_payload_form_and_saves_nothing(admin_client):
    job = ping_job()
    data = form_data(name="ping", job_type="tests.strict", payload_for="jobs.ping")
    response = admin_client.post(f"{LIST}{job.pk}/change/", data)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="payload-code"' in page and 'name="payload-message"' not in page
    assert PeriodicJob.objects.get(pk=job.pk).job_type == "jobs.ping"


def test_editing_moves_the_entry_and_a_timing_change_asks_first(admin_client):
    job = ping_job("nightly ping", cron_expression="0 3 * * *")
    url = f"{LIST}{job.pk}/change/"
    data = form_data(cron_expression="0 4 * * *", _confirmed=None)
    ask = admin_client.post(url, data)
    assert ask.status_code == 200
    page = ask.content.decode()
    assert "kj-confirm-timing" in page and "At 03:00" in page and "At 04:00" in page
    # The load forecast before and after: the same daily run, an hour later.
    assert "kj-forecast-change" in page and "kj-forecast-before" in page and "kj-forecast-after" in page
    assert "(0)" in page.split('id="kj-forecast-delta"')[1].split("</p>")[0]
    assert PeriodicJob.objects.get(pk=job.pk).cron_expression == "0 3 * * *"
    done = admin_client.post(url, {**data, "_confirmed": "yes"})
    assert done.status_code == 302
    schedule = Schedule.objects.get(periodic_job=job)
    assert schedule.cron_expression == "0 4 * * *"
    assert entries.entries_state([schedule.pk])[schedule.pk] == pytest.approx(schedule.next_run_at.timestamp())
    # A change that keeps the timing saves at once.
    assert (
        admin_client.post(url, form_data(cron_expression="0 4 * * *", description="x", _confirmed=None)).status_code
        == 302
    )


def test_a_builtin_job_edits_its_timing_but_keeps_its_name_type_and_is_never_deleted(admin_client):
    prune = builtin_job()
    page = admin_client.get(f"{LIST}{prune.pk}/change/").content.decode()
    assert 'name="cron_expression"' in page and 'name="job_type"' not in page and 'name="name"' not in page
    assert "deletelink" not in page
    assert (
        admin_client.post(
            f"{LIST}{prune.pk}/change/",
            form_data(
                name=None,
                job_type=None,
                payload_for="jobs.prune",
                enabled=None,
                **{"payload-message": None},
                cron_expression="0 4 * * *",
            ),
        ).status_code
        == 302
    )
    prune.refresh_from_db()
    assert (prune.cron_expression, prune.name, prune.enabled) == ("0 4 * * *", "prune", True)
    assert admin_client.get(f"{LIST}{prune.pk}/delete/").status_code == 403
    assert admin_client.post(f"{LIST}{prune.pk}/delete/", {"post": "yes"}).status_code == 403
    assert action(admin_client, "delete_selected", [prune], post="yes").status_code == 403
    assert PeriodicJob.objects.filter(pk=prune.pk).exists()


def test_deleting_a_job_goes_through_the_service(admin_client):
    job = ping_job()
    pk = job.schedule.pk
    assert admin_client.post(f"{LIST}{job.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not PeriodicJob.objects.exists() and not Schedule.objects.filter(pk=pk).exists()
    assert entries.entries_state([pk])[pk] is None


# --- who may ------------------------------------------------------------------------------------------


def test_an_operator_sees_and_runs_periodic_jobs_but_cannot_edit_enable_or_delete_them(operator_client):
    job, prune = ping_job(), builtin_job()
    assert operator_client.get(LIST).status_code == 200
    page = operator_client.get(f"{LIST}{job.pk}/change/").content.decode()
    assert "kj-run-now" in page and "kj-disable" not in page and 'name="cron_expression"' not in page
    assert escape('"message": "hi"') in page  # the payload, read-only
    assert operator_client.get(f"{LIST}add/").status_code == 403
    assert operator_client.post(f"{LIST}{job.pk}/change/", form_data(name="ping")).status_code == 403
    assert operator_client.post(f"{LIST}{job.pk}/delete/", {"post": "yes"}).status_code == 403
    assert operator_client.post(f"{LIST}{prune.pk}/do/disable/", {"confirm": "yes"}).status_code == 403
    action(operator_client, "disable", [job])
    assert PeriodicJob.objects.get(pk=job.pk).enabled  # not offered to them
    assert operator_client.post(f"{LIST}{job.pk}/do/run_now/").status_code == 302
    assert JobRun.objects.filter(schedule__periodic_job=job).count() == 1


def test_staff_without_permissions_see_nothing(client):
    client.force_login(UserFactory(is_staff=True))
    job = ping_job()
    assert client.get(LIST).status_code == 403
    assert client.post(f"{LIST}{job.pk}/do/run_now/").status_code == 403
    assert client.get(f"{LIST}scheduling/").status_code == 403
    assert not JobRun.objects.exists()


# --- pausing all scheduling ---------------------------------------------------------------------------


def test_pause_and_resume_all_scheduling_from_the_admin(admin_client):
    url = f"{LIST}scheduling/"
    assert "Pause all scheduling" in admin_client.get(url).content.decode()
    refused = admin_client.post(url, {"operation": "pause", "reason": ""})
    assert refused.status_code == 200 and "Say why" in refused.content.decode()
    assert not scheduling_paused()

    assert admin_client.post(url, {"operation": "pause", "reason": "database <b>upgrade</b>"}).status_code == 302
    assert scheduling_paused()
    switch = scheduling_switch_get()
    assert switch.changed_by.username == "admin"
    # Every console page says so: who, when, why (escaped).
    for page in ("/admin/jobs/jobrun/", "/admin/jobs/jobrun/dashboard/", LIST, "/admin/"):
        body = admin_client.get(page).content.decode()
        assert 'id="kj-scheduling-paused"' in body, page
        assert "database &lt;b&gt;upgrade&lt;/b&gt;" in body and "by admin" in body
        assert f"{switch.changed_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in body
    assert LogEntry.objects.filter(change_message="Paused all scheduling: database <b>upgrade</b>").exists()

    assert admin_client.post(url, {"operation": "resume"}).status_code == 302
    assert not scheduling_paused()
    assert 'id="kj-scheduling-paused"' not in admin_client.get("/admin/jobs/jobrun/dashboard/").content.decode()
    assert LogEntry.objects.filter(change_message="Resumed all scheduling.").exists()


def test_operators_see_the_pause_but_only_schedulers_may_pause(client):
    operator = OperatorFactory(username="olive")
    client.force_login(operator)
    scheduling_pause(reason="maintenance")
    page = client.get("/admin/jobs/jobrun/dashboard/").content.decode()
    assert 'id="kj-scheduling-paused"' in page and "maintenance" in page and ">Resume all scheduling<" not in page
    assert client.post(f"{LIST}scheduling/", {"operation": "resume"}).status_code == 403
    assert scheduling_paused()

    from django.contrib.auth.models import Permission

    operator.user_permissions.add(Permission.objects.get(codename="schedulers"))
    page = client.get("/admin/jobs/jobrun/dashboard/").content.decode()
    assert ">Resume all scheduling<" in page
    assert client.post(f"{LIST}scheduling/", {"operation": "resume"}).status_code == 302
    assert not scheduling_paused()


def test_the_dashboard_lists_disabled_builtin_jobs(admin_client):
    prune = builtin_job("prune")
    monitor = builtin_job("monitor")
    periodic_job_set_enabled(ping_job("not built in"), False)
    periodic_job_set_enabled(monitor, False)
    page = admin_client.get("/admin/jobs/jobrun/dashboard/").content.decode()
    block = page.split('id="kj-disabled-builtins"')[1].split("</div>")[0]
    assert f"{LIST}{monitor.pk}/change/" in block and "monitor" in block
    assert f"{LIST}{prune.pk}/change/" not in block and "not built in" not in block
    assert re.search(r"Scheduling.*running", page, re.S)


def test_the_login_page_shows_no_banner(client):
    scheduling_pause(reason="maintenance")
    assert 'id="kj-scheduling-paused"' not in client.get("/admin/login/").content.decode()
