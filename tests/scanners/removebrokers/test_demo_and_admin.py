"""The demo `make run` shows (stub brokers, pending → submitted → confirmed) and the admin operators use."""

import threading
from datetime import timedelta

import httpx
import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from jobs import enqueue
from jobs.demo import demo_data_ensure
from jobs.models import JobRun
from scanners.removebrokers import stub
from scanners.removebrokers.models import DataBroker, RemovalRequest
from scanners.removebrokers.services import removal_requests_create
from tests.factories import SubscriptionFactory
from tests.scanners.removebrokers.conftest import PERSON

pytestmark = pytest.mark.django_db(transaction=True)
Status = RemovalRequest.Status


@pytest.fixture
def stub_server(settings):
    server = stub.make_server(port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.REMOVEBROKERS_DEMO_URL = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def stub_url(stub_server, settings):
    return settings.REMOVEBROKERS_DEMO_URL


def test_a_pass_reuses_one_connection_for_every_request_to_the_brokers(stub_server, stub_url, run_worker, settings):
    # One request in flight at a time, so pooling alone decides: every request rides one connection.
    # (Overlapped calls up to REMOVEBROKERS_CONCURRENCY: tests/scanners/removebrokers/test_engine.py.)
    settings.REMOVEBROKERS_CONCURRENCY = 1
    for name in ("alpha", "beta"):
        DataBroker.objects.create(
            name=name, method="api", endpoint=f"{stub_url}/{name}/optout", required_fields=["full_name", "email"]
        )
    for _ in range(3):
        removal_requests_create(SubscriptionFactory(), PERSON)

    run_worker()

    state = stub_server.RequestHandlerClass.state
    assert RemovalRequest.objects.filter(status=Status.SUBMITTED).count() == state.count == 6
    assert state.connections == 1


def test_the_stub_lists_a_person_until_their_opt_out_arrives(stub_url):
    with httpx.Client(base_url=stub_url) as client:
        assert client.get("/findme/search", params={"email": "a@example.com"}).json() == {"listed": True}
        first = client.post("/findme/optout", json={"email": "a@example.com"}, headers={"Idempotency-Key": "k1"})
        again = client.post("/findme/optout", json={"email": "a@example.com"}, headers={"Idempotency-Key": "k1"})
        assert first.status_code == 201 and first.json() == again.json()
        assert client.get("/findme/search", params={"email": "a@example.com"}).json() == {"listed": False}
        assert client.get("/other/search", params={"email": "a@example.com"}).json() == {"listed": True}
        assert client.post("/findme/optout", json={}).status_code == 422


def test_demo_requests_move_from_pending_to_submitted_to_confirmed(stub_url, run_worker, redis_conn):
    demo_data_ensure()
    call_command("removebrokers_demo")
    call_command("removebrokers_demo")  # idempotent
    assert DataBroker.objects.count() == 4
    assert set(RemovalRequest.objects.values_list("status", flat=True)) == {Status.PENDING}
    per_subscription = RemovalRequest.objects.count() // 4

    run_worker()
    statuses = set(RemovalRequest.objects.values_list("broker__method", "status"))
    assert statuses == {("api", "submitted"), ("email", "submitted"), ("manual", "needs_user_action")}

    # The next minute's system pass re-checks them (demo brokers re-check after 0 days).
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        enqueue("removebrokers.process", {})
        run_worker()
    confirmed = RemovalRequest.objects.filter(status=Status.CONFIRMED)
    assert set(confirmed.values_list("broker__method", flat=True)) == {"api"}
    assert confirmed.count() == 2 * per_subscription


def test_operators_see_requests_and_send_a_failed_one_round_again(admin_client, broker_api, subscription):
    broker_api.broker()
    (request,) = removal_requests_create(subscription, PERSON)
    RemovalRequest.objects.filter(pk=request.pk).update(status=Status.FAILED, attempts=6, last_error="boom")

    assert admin_client.get("/admin/scanners/databroker/").status_code == 200
    page = admin_client.get("/admin/scanners/removalrequest/", {"status__exact": "failed", "q": "peoplefinder"})
    assert page.status_code == 200 and "boom" not in page.content.decode() and str(request.pk) in page.content.decode()
    assert admin_client.get(f"/admin/scanners/removalrequest/{request.pk}/change/").status_code == 200

    response = admin_client.post(
        "/admin/scanners/removalrequest/", {"action": "retry", "_selected_action": [request.pk]}, follow=True
    )
    assert "1 request(s) sent round again." in response.content.decode()
    request.refresh_from_db()
    assert (request.status, request.attempts, request.last_error) == (Status.PENDING, 0, "")
    assert JobRun.objects.filter(job_type="removebrokers.process").exists()


def test_the_scheduler_starts_a_pass_every_minute(redis_conn, builtin_jobs):
    from jobs.scheduler import KordantScheduler

    schedule = builtin_jobs["removebrokers.process"].schedule
    assert schedule.cron_expression == "* * * * *"
    with time_machine.travel(schedule.next_run_at + timedelta(seconds=1), tick=False):
        report = KordantScheduler(connection=redis_conn).fire_due()
    assert report.queued >= 1  # the every-minute monitor may fall due in the same second
    assert JobRun.objects.get(job_type="removebrokers.process").schedule_id == schedule.pk
