"""/api/v1/periodic-jobs/ and /api/v1/scheduler: staff manage every periodic job, customers their own."""

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings

from jobs import entries
from jobs.models import JobRun, PeriodicJob, Schedule, SchedulingSwitch
from jobs.periodic import periodic_job_create
from tests.api.conftest import error_of
from tests.factories import OperatorFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db
# The built-in jobs are rows (migration 0006); these tests count the jobs they add.
BUILTINS = 5
PING = {"name": "ping", "job_type": "jobs.ping", "payload": {"message": "hi"}, "cron_expression": "*/5 * * * *"}


def added():
    """The periodic jobs a test made: everything but the built-in ones."""
    return PeriodicJob.objects.filter(builtin=False)


@pytest.fixture
def manager(db):
    """Staff who may change periodic jobs (as the admin asks: the model's permissions)."""
    user = OperatorFactory(username="manager", operator_permissions__schedulers=True)
    codenames = ("add_periodicjob", "change_periodicjob", "delete_periodicjob")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def weekly_report(subscription, **fields) -> dict:
    body = {
        "name": "my weekly report",
        "job_type": "reports.recent",
        "payload": {"subscription_id": subscription.pk, "days": 7},
        "cron_expression": "0 9 * * 1",
        "timezone": "Europe/London",
    }
    return {**body, **fields}


def test_staff_create_a_job_of_any_type_and_its_entry_follows_the_commit(
    api, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_user(manager).post("/api/v1/periodic-jobs/", PING, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["Location"] == f"/api/v1/periodic-jobs/{body['id']}/"
    assert (body["job_type"], body["owner"], body["state"], body["run_count"]) == ("jobs.ping", None, "active", 0)
    schedule = Schedule.objects.get(periodic_job_id=body["id"])
    assert body["next_run_at"] is not None
    assert entries.entries_state([schedule.pk])[schedule.pk] == pytest.approx(schedule.next_run_at.timestamp())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"job_type": "no.such_type"}, "job_type"),
        ({"payload": {"message": "hi", "extra": 1}}, "payload"),
        ({"payload": {}}, "payload"),
        ({"cron_expression": "0 0 31 2 *"}, "cron_expression"),
        ({"cron_expression": "61 * * * *"}, "cron_expression"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"cron_expression": "", "frequency": ""}, "cron_expression"),
        ({"frequency": "fortnightly", "cron_expression": ""}, "frequency"),
        ({"retry_delays": [-5]}, "retry_delays"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_input_is_a_400_at_its_field_and_saves_nothing(api, manager, change, field):
    response = api.as_user(manager).post("/api/v1/periodic-jobs/", {**PING, **change}, format="json")
    assert response.status_code == 400, response.json()
    assert any(key == field or key.startswith(f"{field}.") for key in error_of(response)["fields"]), response.json()
    assert not added().exists()
    assert not Schedule.objects.filter(periodic_job__builtin=False).exists()
    assert not Schedule.objects.filter(subscription__isnull=False).exists()


def test_a_second_job_with_the_same_name_is_refused(api, manager):
    client = api.as_user(manager)
    assert client.post("/api/v1/periodic-jobs/", PING, format="json").status_code == 201
    response = client.post("/api/v1/periodic-jobs/", PING, format="json")
    assert response.status_code == 400
    assert added().count() == 1


def test_a_customer_schedules_their_own_report_every_monday_at_nine_on_their_clock(api, alice):
    subscription = alice.subscriptions.get()
    response = api.as_user(alice).post("/api/v1/periodic-jobs/", weekly_report(subscription), format="json")
    assert response.status_code == 201, response.json()
    job = added().get()
    assert job.owner == alice
    next_run = job.schedule.next_run_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/London"))
    assert (next_run.weekday(), next_run.hour, next_run.minute) == (0, 9, 0)


def test_a_customer_may_not_schedule_a_type_that_is_not_open_to_customers(api, alice):
    response = api.as_user(alice).post("/api/v1/periodic-jobs/", PING, format="json")
    assert response.status_code == 403
    assert "reports.recent" in error_of(response)["message"]
    assert not added().exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron_expression": "* * * * *"}, "cron_expression"),
        ({"cron_expression": "*/30 9 * * 1"}, "cron_expression"),
        ({"priority": "critical"}, "priority"),
        ({"max_attempts": 20}, "max_attempts"),
        ({"retry_delays": [0, 0, 0]}, "retry_delays"),
    ],
)
def test_customers_jobs_run_at_most_hourly_on_their_types_queue_and_retry_policy(api, alice, change, field):
    body = weekly_report(alice.subscriptions.get(), **change)
    response = api.as_user(alice).post("/api/v1/periodic-jobs/", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in error_of(response)["fields"]
    assert not added().exists()


def test_a_customer_cannot_schedule_a_report_of_someone_elses_subscription(api, alice, bob):
    body = weekly_report(bob.subscriptions.get())
    response = api.as_user(alice).post("/api/v1/periodic-jobs/", body, format="json")
    assert response.status_code == 400
    assert "Not one of your subscriptions" in str(error_of(response)["fields"]["payload"])
    # Nor move one of theirs to it afterwards.
    mine = api.as_user(alice).post("/api/v1/periodic-jobs/", weekly_report(alice.subscriptions.get()), format="json")
    moved = api.as_user(alice).patch(
        f"/api/v1/periodic-jobs/{mine.json()['id']}/", {"payload": body["payload"]}, format="json"
    )
    assert moved.status_code == 400
    assert added().get().payload["subscription_id"] == alice.subscriptions.get().pk


@override_settings(JOBS_PERIODIC_JOBS_PER_CUSTOMER=2)
def test_a_customer_owns_at_most_the_configured_number(api, alice):
    client = api.as_user(alice)
    subscription = alice.subscriptions.get()
    for n in range(2):
        body = weekly_report(subscription, name=f"report {n}")
        assert client.post("/api/v1/periodic-jobs/", body, format="json").status_code == 201
    response = client.post("/api/v1/periodic-jobs/", weekly_report(subscription, name="one more"), format="json")
    assert response.status_code == 400
    assert "at most" in error_of(response)["message"] or "most a customer" in error_of(response)["message"]
    assert added().count() == 2


def test_someone_elses_periodic_job_is_a_404_everywhere(api, alice, bob):
    theirs = periodic_job_create(owner=bob, **weekly_report(bob.subscriptions.get()))
    system = periodic_job_create(**PING)
    client = api.as_user(alice)
    assert client.get("/api/v1/periodic-jobs/").json()["count"] == 0
    for job in (theirs, system):
        base = f"/api/v1/periodic-jobs/{job.pk}/"
        assert client.get(base).status_code == 404
        assert client.get(f"{base}runs/").status_code == 404
        assert client.patch(base, {"enabled": False}, format="json").status_code == 404
        assert client.delete(base).status_code == 404
        for verb in ("trigger", "enable", "disable"):
            assert client.post(f"{base}{verb}/").status_code == 404
    assert added().count() == 2
    assert not JobRun.objects.exists()


def test_the_owner_runs_disables_and_deletes_their_job_and_sees_its_runs(
    api, alice, django_capture_on_commit_callbacks
):
    job = periodic_job_create(owner=alice, **weekly_report(alice.subscriptions.get()))
    client = api.as_user(alice)
    base = f"/api/v1/periodic-jobs/{job.pk}/"
    with django_capture_on_commit_callbacks(execute=True):
        triggered = client.post(f"{base}trigger/")
    assert triggered.status_code == 202
    run = JobRun.objects.get()
    assert (run.trigger, run.schedule.periodic_job, run.user) == ("manual", job, alice)
    assert [row["id"] for row in client.get(f"{base}runs/").json()["results"]] == [str(run.pk)]
    # The run is the customer's: the jobs endpoint shows it to them too.
    assert client.get(f"/api/v1/jobs/{run.pk}/").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        disabled = client.post(f"{base}disable/")
    assert (disabled.json()["enabled"], disabled.json()["state"], disabled.json()["next_run_at"]) == (
        False,
        "paused",
        None,
    )
    assert entries.entries_state([job.schedule.pk])[job.schedule.pk] is None
    assert client.delete(base).status_code == 204
    assert not added().exists()
    assert JobRun.objects.filter(pk=run.pk).exists()  # history stays


def test_deleting_a_builtin_job_is_a_409_and_deletes_nothing(api, manager):
    job = periodic_job_create(**PING)
    PeriodicJob.objects.filter(pk=job.pk).update(builtin=True)
    response = api.as_user(manager).delete(f"/api/v1/periodic-jobs/{job.pk}/")
    assert response.status_code == 409
    assert error_of(response)["code"] == "protected"
    assert PeriodicJob.objects.filter(pk=job.pk).exists()


def test_builtin_is_read_only(api, manager):
    job = periodic_job_create(**PING)
    response = api.as_user(manager).patch(f"/api/v1/periodic-jobs/{job.pk}/", {"builtin": True}, format="json")
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.builtin is False


def test_the_scheduler_says_whether_it_runs_and_pause_and_resume_flip_the_switch(api, staff, alice):
    periodic_job_create(**PING)
    client = api.as_user(staff)
    state = client.get("/api/v1/scheduler").json()
    assert (state["state"], state["paused"], state["heartbeat"]) == ("missing", False, None)
    assert state["periodic_jobs"]["active"] == 1 + BUILTINS

    paused = client.post("/api/v1/scheduler/pause", {"reason": "database upgrade"}, format="json")
    assert paused.status_code == 200
    assert (paused.json()["state"], paused.json()["reason"], paused.json()["changed_by"]) == (
        "paused",
        "database upgrade",
        "operator",
    )
    assert SchedulingSwitch.objects.get().paused

    resumed = client.post("/api/v1/scheduler/resume")
    assert (resumed.json()["paused"], resumed.json()["state"]) == (False, "missing")

    # Customers see neither the switch nor the scheduler.
    assert api.as_user(alice).get("/api/v1/scheduler").status_code == 403
    assert api.as_user(alice).post("/api/v1/scheduler/pause").status_code == 403
    assert not SchedulingSwitch.objects.get().paused


def test_a_pause_reason_longer_than_the_field_is_a_400(api, staff):
    response = api.as_user(staff).post("/api/v1/scheduler/pause", {"reason": "x" * 301}, format="json")
    assert response.status_code == 400
    assert not SchedulingSwitch.objects.filter(paused=True).exists()


def test_staff_see_every_periodic_job_customers_their_own(api, manager, alice, bob):
    periodic_job_create(owner=alice, **weekly_report(alice.subscriptions.get()))
    periodic_job_create(owner=bob, **weekly_report(bob.subscriptions.get()))
    periodic_job_create(**PING)
    assert api.as_user(manager).get("/api/v1/periodic-jobs/").json()["count"] == 3 + BUILTINS
    assert api.as_user(alice).get("/api/v1/periodic-jobs/").json()["count"] == 1
    other = UserFactory(username="carol")
    SubscriptionFactory(user=other)
    assert api.as_user(other).get("/api/v1/periodic-jobs/").json()["count"] == 0
