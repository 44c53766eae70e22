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
