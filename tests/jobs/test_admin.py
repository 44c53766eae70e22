import pytest

from jobs import enqueue

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_see_runs_and_their_timeline(admin_client, run_worker):
    run = enqueue("jobs.ping", {"message": "visible"})
    run_worker()

    changelist = admin_client.get("/admin/jobs/jobrun/")
    assert changelist.status_code == 200
    assert str(run.pk) in changelist.content.decode()

    page = admin_client.get(f"/admin/jobs/jobrun/{run.pk}/change/")
    assert page.status_code == 200
    assert "completed" in page.content.decode()
    assert admin_client.get("/admin/jobs/jobrun/add/").status_code == 403


def test_non_staff_are_sent_to_login(client):
    assert client.get("/admin/jobs/jobrun/").status_code == 302


def test_staff_edit_the_tier_table_and_pause_a_schedule(admin_client, redis_conn):
    from jobs import entries
    from jobs.models import Schedule, SchedulerConfig
    from tests.factories import SubscriptionFactory

    config = SchedulerConfig.objects.create(tier="plus", job_type="jobs.ping", frequency="daily")
    schedule = Schedule.objects.get(subscription=SubscriptionFactory(tier="plus"), config=config)
    assert admin_client.get("/admin/jobs/schedulerconfig/").status_code == 200
    assert admin_client.get("/admin/jobs/schedule/").status_code == 200

    response = admin_client.post(f"/admin/jobs/schedule/{schedule.pk}/change/", {})  # "enabled" unticked
    assert response.status_code == 302

    schedule.refresh_from_db()
    assert not schedule.enabled and schedule.next_run_at is None
    assert redis_conn.zscore(entries.SCHEDULED_KEY, schedule.entry_id) is None
