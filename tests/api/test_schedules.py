import pytest

from jobs import entries
from jobs.models import JobRun, Schedule, SchedulerConfig
from tests.api.conftest import error_of, queries_per_page_size
from tests.api.factories import ScheduleFactory, SchedulerConfigFactory

pytestmark = pytest.mark.django_db


def test_owners_list_their_schedules_and_get_404_for_others(api, alice, bob, staff):
    mine = ScheduleFactory(subscription=alice.subscriptions.get())
    theirs = ScheduleFactory(subscription=bob.subscriptions.get())
    client = api.as_user(alice)
    listed = client.get("/api/v1/schedules/").json()
    assert [row["id"] for row in listed["results"]] == [mine.pk]
    assert listed["results"][0]["job_type"] == "jobs.ping"
    response = client.get(f"/api/v1/schedules/{theirs.pk}/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert client.post(f"/api/v1/schedules/{theirs.pk}/pause/").status_code == 404
    assert api.as_user(staff).get("/api/v1/schedules/").json()["count"] == 2


def test_owner_pauses_and_resumes_their_schedule_and_its_entry_follows(api, alice, django_capture_on_commit_callbacks):
    schedule = ScheduleFactory(subscription=alice.subscriptions.get())
    entries.entries_write({schedule.pk: schedule.next_run_at})
    client = api.as_user(alice)

    with django_capture_on_commit_callbacks(execute=True):
        paused = client.post(f"/api/v1/schedules/{schedule.pk}/pause/")
    assert paused.status_code == 200
    assert (paused.json()["enabled"], paused.json()["next_run_at"]) == (False, None)
    assert entries.entries_state([schedule.pk])[schedule.pk] is None

    with django_capture_on_commit_callbacks(execute=True):
        resumed = client.post(f"/api/v1/schedules/{schedule.pk}/resume/")
    assert resumed.json()["enabled"] is True
    schedule.refresh_from_db()
    assert schedule.next_run_at is not None
    assert entries.entries_state([schedule.pk])[schedule.pk] == pytest.approx(schedule.next_run_at.timestamp())


def test_only_staff_trigger_a_schedule_now(api, alice, staff):
    schedule = ScheduleFactory(subscription=alice.subscriptions.get())
    refused = api.as_user(alice).post(f"/api/v1/schedules/{schedule.pk}/trigger/")
    assert refused.status_code == 403
    assert not JobRun.objects.exists()

    triggered = api.as_user(staff).post(f"/api/v1/schedules/{schedule.pk}/trigger/")
    assert triggered.status_code == 202
    run = JobRun.objects.get()
    assert triggered["Location"] == f"/api/v1/jobs/{run.pk}/"
    assert (run.trigger, run.schedule, run.user) == ("manual", schedule, staff)
    schedule.refresh_from_db()
    assert schedule.run_count == 0  # the timing and counters stay as they were


def test_schedule_list_query_count_does_not_grow_with_page_size(api, staff):
    configs = [SchedulerConfigFactory(tier=tier, job_type="jobs.ping") for tier in ("premium", "basic")]
    for index in range(30):
        for config in configs:
            ScheduleFactory(config=config, cron_expression=f"{index} 3 * * *")
    counts = queries_per_page_size(api.as_user(staff), "/api/v1/schedules/")
    assert counts[5] == counts[50] <= 5, counts  # the staff member's permissions are 2 of them


# --- scheduler configs -------------------------------------------------------------------


def test_scheduler_configs_are_staff_only(api, alice):
    client = api.as_user(alice)
    assert client.get("/api/v1/scheduler-configs/").status_code == 403
    before = SchedulerConfig.objects.count()
    response = client.post(
        "/api/v1/scheduler-configs/", {"tier": "basic", "job_type": "jobs.ping", "frequency": "daily"}, format="json"
    )
    assert response.status_code == 403
    assert SchedulerConfig.objects.count() == before


def test_a_bad_cron_expression_is_a_field_error_and_changes_nothing(api, staff):
    config = SchedulerConfigFactory(tier="basic", job_type="jobs.ping", frequency="", cron_expression="0 4 * * *")
    response = api.as_user(staff).patch(
        f"/api/v1/scheduler-configs/{config.pk}/", {"cron_expression": "61 * * * *"}, format="json"
    )
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["cron_expression"]
    config.refresh_from_db()
    assert config.cron_expression == "0 4 * * *"


def test_config_rules_of_the_model_apply_as_in_the_admin(api, staff):
    client = api.as_user(staff)
    both = client.post(
        "/api/v1/scheduler-configs/",
        {"tier": "basic", "job_type": "jobs.ping", "frequency": "daily", "cron_expression": "0 4 * * *"},
        format="json",
    )
    assert both.status_code == 400
    assert "Give either a frequency or a cron expression" in error_of(both)["fields"]["cron_expression"][0]

    unknown = client.post(
        "/api/v1/scheduler-configs/", {"tier": "basic", "job_type": "nope.scan", "frequency": "daily"}, format="json"
    )
    assert unknown.status_code == 400 and "job_type" in error_of(unknown)["fields"]

    existing = SchedulerConfig.objects.filter(tier="premium", job_type="darkwatch.scan").get()
    duplicate = client.post(
        "/api/v1/scheduler-configs/",
        {"tier": "premium", "job_type": "darkwatch.scan", "frequency": "daily"},
        format="json",
    )
    assert duplicate.status_code == 400, duplicate.json()
    assert "already exists" in error_of(duplicate)["message"]
    assert SchedulerConfig.objects.filter(tier="premium", job_type="darkwatch.scan").get() == existing


def test_staff_change_a_config_and_the_tier_resyncs(api, staff, alice, django_capture_on_commit_callbacks):
    config = SchedulerConfigFactory(tier="premium", job_type="jobs.ping", frequency="", cron_expression="0 4 * * *")
    schedule = ScheduleFactory(subscription=alice.subscriptions.get(), config=config, cron_expression="0 4 * * *")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_user(staff).patch(
            f"/api/v1/scheduler-configs/{config.pk}/", {"cron_expression": "30 5 * * *"}, format="json"
        )
    assert response.status_code == 200, response.json()
    schedule.refresh_from_db()
    assert schedule.cron_expression == "30 5 * * *"

    created = api.as_user(staff).post(
        "/api/v1/scheduler-configs/", {"tier": "basic", "job_type": "jobs.ping", "frequency": "weekly"}, format="json"
    )
    assert created.status_code == 201
    assert created["Location"] == f"/api/v1/scheduler-configs/{created.json()['id']}/"
    assert Schedule.objects.filter(config_id=created.json()["id"]).count() == 0  # no basic subscribers here


# --- issue 15 ------------------------------------------------------------------------------


@pytest.mark.parametrize("cron", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6 *"])
def test_a_cron_whose_dates_never_occur_is_a_400_and_saves_nothing(api, staff, cron):
    client = api.as_user(staff)
    created = client.post(
        "/api/v1/scheduler-configs/", {"tier": "basic", "job_type": "jobs.ping", "cron_expression": cron}, format="json"
    )
    assert created.status_code == 400
    assert "never runs" in error_of(created)["fields"]["cron_expression"][0]
    assert not SchedulerConfig.objects.filter(job_type="jobs.ping").exists()

    config = SchedulerConfigFactory(tier="basic", job_type="jobs.ping", frequency="", cron_expression="0 4 * * *")
    changed = client.patch(f"/api/v1/scheduler-configs/{config.pk}/", {"cron_expression": cron}, format="json")
    assert changed.status_code == 400 and list(error_of(changed)["fields"]) == ["cron_expression"]
    config.refresh_from_db()
    assert config.cron_expression == "0 4 * * *"


def test_only_types_that_can_run_on_a_schedule_may_be_configured(api, staff):
    refused = api.as_user(staff).post(
        "/api/v1/scheduler-configs/",
        {"tier": "basic", "job_type": "notifications.send", "frequency": "daily"},
        format="json",
    )
    assert refused.status_code == 400
    assert "cannot run on a schedule" in error_of(refused)["fields"]["job_type"][0]
    assert not SchedulerConfig.objects.filter(job_type="notifications.send").exists()
    schema = api.as_user(staff).get("/api/schema/", {"format": "json"}).json()
    offered = next(
        value["enum"]
        for name, value in schema["components"]["schemas"].items()
        if name.endswith("JobTypeEnum") and "darkwatch.scan" in value.get("enum", [])
    )
    assert "notifications.send" not in offered and "reports.generate" in offered


def test_resuming_a_schedule_whose_config_is_disabled_says_it_waits(api, alice, django_capture_on_commit_callbacks):
    config = SchedulerConfigFactory(tier="premium", job_type="jobs.ping", enabled=False)
    schedule = ScheduleFactory(subscription=alice.subscriptions.get(), config=config, enabled=False, next_run_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        resumed = api.as_user(alice).post(f"/api/v1/schedules/{schedule.pk}/resume/")
    assert resumed.status_code == 200
    body = resumed.json()
    assert (body["enabled"], body["state"], body["next_run_at"]) == (True, "waiting_for_config", None)
    assert "config is disabled" in body["state_reason"]
    listed = api.as_user(alice).get("/api/v1/schedules/", {"state": "waiting_for_config"}).json()
    assert [row["id"] for row in listed["results"]] == [schedule.pk]
    assert entries.entries_state([schedule.pk])[schedule.pk] is None


def test_a_broken_schedule_says_why_in_the_api(api, alice):
    schedule = ScheduleFactory(subscription=alice.subscriptions.get(), next_run_at=None)
    Schedule.objects.filter(pk=schedule.pk).update(cron_expression="0 0 31 4 *")
    body = api.as_user(alice).get(f"/api/v1/schedules/{schedule.pk}/").json()
    assert body["state"] == "broken" and "never" in body["state_reason"]


def test_triggering_a_schedule_of_a_type_that_cannot_run_on_a_schedule_is_a_409(api, alice, staff):
    schedule = ScheduleFactory(subscription=alice.subscriptions.get())
    SchedulerConfig.objects.filter(pk=schedule.config_id).update(job_type="notifications.send")  # an old row
    response = api.as_user(staff).post(f"/api/v1/schedules/{schedule.pk}/trigger/")
    assert response.status_code == 409
    assert "cannot run on a schedule" in error_of(response)["message"]
    assert not JobRun.objects.exists()
