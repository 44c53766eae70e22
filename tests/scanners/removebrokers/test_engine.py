"""removebrokers.process run as production runs it (enqueue, burst worker) against a local broker API."""

import importlib.util
import json
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from jobs import enqueue
from jobs.models import JobRun
from scanners.removebrokers.engine import RemovalEngine
from scanners.removebrokers.models import DataBroker, RemovalRequest
from scanners.removebrokers.services import removal_requests_create
from tests.factories import SubscriptionFactory
from tests.notifications import Stall, closed_port
from tests.provider_server import ProviderServer
from tests.scanners.removebrokers.conftest import PERSON, BrokerAPI

pytestmark = pytest.mark.django_db(transaction=True)
Status = RemovalRequest.Status
needs_notify = pytest.mark.skipif(
    not importlib.util.find_spec("notifications.services"), reason="needs issue 8's notify()"
)


def process(run_worker) -> JobRun:
    run = enqueue("removebrokers.process", {})
    run_worker()
    run.refresh_from_db()
    assert run.status == JobRun.Status.COMPLETED, run.error
    return run


def test_an_api_broker_gets_the_fields_it_needs_and_its_reference_is_kept(broker_api, subscription, run_worker):
    broker = broker_api.broker()
    (request,) = removal_requests_create(subscription, PERSON)

    process(run_worker)

    request.refresh_from_db()
    assert request.status == Status.SUBMITTED
    assert request.broker_reference == "peoplefinder-1"
    assert (request.attempts, request.submissions) == (1, 1)
    assert request.next_attempt_at == request.submitted_at + timedelta(days=30)
    assert broker_api.posts == [
        {
            "request_id": f"kordant-{request.pk}",
            "full_name": "Avery Quinn",
            "email": "avery@example.com",
            "idempotency_key": f"removal-{request.pk}-1",
        }
    ]
    assert broker.name == "peoplefinder"


def test_creating_requests_enqueues_one_pass_that_submits_them(broker_api, subscription, run_worker):
    broker_api.broker()
    removal_requests_create(subscription, PERSON)
    removal_requests_create(SubscriptionFactory(), PERSON)

    assert JobRun.objects.filter(job_type="removebrokers.process").count() == 1
    run_worker()

    assert len(broker_api.posts) == 2
    assert set(RemovalRequest.objects.values_list("status", flat=True)) == {Status.SUBMITTED}


def test_processing_twice_submits_each_request_once(broker_api, subscription, run_worker):
    broker_api.broker()
    removal_requests_create(subscription, PERSON)

    process(run_worker)
    process(run_worker)

    assert len(broker_api.posts) == 1


def test_a_second_open_request_for_the_same_broker_is_not_created(broker_api, subscription):
    broker_api.broker()
    first = removal_requests_create(subscription, PERSON)
    again = removal_requests_create(subscription, PERSON)

    assert len(first) == 1
    assert again == []
    assert RemovalRequest.objects.count() == 1


def test_the_database_refuses_a_second_open_request_but_allows_one_after_a_failure(broker_api, subscription):
    from django.db import IntegrityError, transaction

    broker = broker_api.broker()
    first = RemovalRequest.objects.create(subscription=subscription, broker=broker, person=PERSON)
    with pytest.raises(IntegrityError), transaction.atomic():
        RemovalRequest.objects.create(subscription=subscription, broker=broker, person=PERSON)
    RemovalRequest.objects.filter(pk=first.pk).update(status=Status.FAILED)
    RemovalRequest.objects.create(subscription=subscription, broker=broker, person=PERSON)


def test_missing_person_fields_are_refused_and_nothing_is_created(broker_api, subscription):
    from scanners.removebrokers.services import RemovalRequestInvalid

    broker_api.broker(required_fields=["full_name", "email", "phone"])

    with pytest.raises(RemovalRequestInvalid, match="peoplefinder needs phone"):
        removal_requests_create(subscription, PERSON)
    with pytest.raises(RemovalRequestInvalid, match="unknown person fields: shoe_size"):
        removal_requests_create(subscription, {**PERSON, "phone": "+15550100", "shoe_size": "9"})
    assert RemovalRequest.objects.count() == 0
    assert not JobRun.objects.exists()


def test_a_4xx_fails_that_request_only(httpserver, subscription, run_worker):
    good, bad = BrokerAPI(httpserver, "goodbroker"), BrokerAPI(httpserver, "badbroker")
    good.broker()
    bad.broker()
    bad.answers.append((422, {"error": "email is not a valid address"}, {}))
    removal_requests_create(subscription, PERSON)

    process(run_worker)

    statuses = dict(RemovalRequest.objects.values_list("broker__name", "status"))
    assert statuses == {"goodbroker": Status.SUBMITTED, "badbroker": Status.FAILED}
    failed = RemovalRequest.objects.get(broker__name="badbroker")
    assert failed.last_error == "badbroker answered 422: email is not a valid address"
    assert failed.next_attempt_at is None


def test_a_5xx_is_retried_later_and_then_submitted(broker_api, subscription, run_worker):
    broker_api.broker()
    broker_api.answers.append((503, {"error": "maintenance"}, {"Retry-After": "600"}))
    (request,) = removal_requests_create(subscription, PERSON)

    with time_machine.travel(timezone.now(), tick=False) as clock:
        process(run_worker)
        request.refresh_from_db()
        assert request.status == Status.PENDING
        assert request.attempts == 1
        assert "answered 503: maintenance" in request.last_error
        # The broker's Retry-After (10 min) beats the first retry delay (1 min).
        assert request.next_attempt_at == timezone.now() + timedelta(seconds=600)

        clock.shift(timedelta(seconds=599))
        process(run_worker)
        assert len(broker_api.posts) == 1  # not yet

        clock.shift(timedelta(seconds=2))
        process(run_worker)

    request.refresh_from_db()
    assert request.status == Status.SUBMITTED
    assert (request.attempts, request.submissions, request.last_error) == (2, 1, "")
    # The same submission number, so a broker that honours the key files it once.
    assert [post["idempotency_key"] for post in broker_api.posts] == [f"removal-{request.pk}-1"] * 2


def test_a_timeout_leaves_the_request_pending_for_a_retry(httpserver, subscription, run_worker, settings):
    settings.REMOVEBROKERS_HTTP_TIMEOUT = 0.2
    with Stall() as stall:
        httpserver.expect_request("/slow/optout", method="POST").respond_with_handler(stall)
        DataBroker.objects.create(
            name="slowbroker", method="api", endpoint=httpserver.url_for("/slow/optout"), required_fields=["email"]
        )
        (request,) = removal_requests_create(subscription, PERSON)
        process(run_worker)

    request.refresh_from_db()
    assert request.status == Status.PENDING
    assert request.attempts == 1
    assert "slowbroker timed out" in request.last_error
    assert request.next_attempt_at > timezone.now() + timedelta(seconds=50)


def test_a_request_that_keeps_failing_gives_up_after_the_configured_attempts(
    broker_api, subscription, run_worker, settings
):
    settings.REMOVEBROKERS_MAX_ATTEMPTS = 3
    broker_api.broker()
    broker_api.answers.extend([(500, {"error": "boom"}, {})] * 3)
    (request,) = removal_requests_create(subscription, PERSON)

    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(3):
            process(run_worker)
            clock.shift(timedelta(hours=2))

    request.refresh_from_db()
    assert request.status == Status.FAILED
    assert request.attempts == 3
    assert request.last_error == "gave up after 3 attempts: peoplefinder answered 500: boom"


def test_an_email_broker_gets_an_opt_out_email_through_the_email_backend(subscription, run_worker):
    DataBroker.objects.create(
        name="Mailbox Data", method="email", endpoint="privacy@mailbox-data.example", required_fields=["full_name"]
    )
    (request,) = removal_requests_create(subscription, PERSON)

    process(run_worker)
    process(run_worker)

    (email,) = mail.outbox
    assert email.to == ["privacy@mailbox-data.example"]
    assert "Full name: Avery Quinn" in email.body
    assert f"kordant-{request.pk}" in email.subject
    request.refresh_from_db()
    assert request.status == Status.SUBMITTED
    assert request.broker_reference == email.extra_headers["Message-ID"]
    assert request.next_attempt_at is None  # no search endpoint: nothing to re-check


def test_an_email_that_cannot_be_sent_is_tried_again_later(subscription, run_worker, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    DataBroker.objects.create(name="Mailbox Data", method="email", endpoint="privacy@mailbox-data.example")
    (request,) = removal_requests_create(subscription, PERSON)

    process(run_worker)

    request.refresh_from_db()
    assert (request.status, request.attempts, request.submissions) == (Status.PENDING, 1, 0)
    assert request.last_error.startswith("Mailbox Data: the opt-out email could not be sent")
    assert request.next_attempt_at > timezone.now()


def test_a_manual_broker_needs_the_customer_and_nothing_is_sent(broker_api, subscription, run_worker):
    DataBroker.objects.create(
        name="Paper Pages",
        method="manual",
        endpoint="https://paperpages.example/optout",
        instructions="Fill in the form and confirm the email they send you.",
    )
    (request,) = removal_requests_create(subscription, PERSON)

    process(run_worker)
    process(run_worker)

    request.refresh_from_db()
    assert request.status == Status.NEEDS_USER_ACTION
    assert request.attempts == 0
    assert broker_api.posts == []
    # The only email is the customer's "needs your action" notice: nothing went to the broker.
    assert [message.to for message in mail.outbox] == [[subscription.user.email]]


def test_recheck_waits_the_configured_days_then_confirms_a_person_no_longer_listed(
    broker_api, subscription, run_worker
):
    broker_api.broker(recheck_after_days=10)
    (request,) = removal_requests_create(subscription, PERSON)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        process(run_worker)
        clock.shift(timedelta(days=9, hours=23))
        process(run_worker)
        assert broker_api.searches == []

        clock.shift(timedelta(hours=2))
        process(run_worker)

    request.refresh_from_db()
    assert broker_api.searches == [{"full_name": "Avery Quinn", "email": "avery@example.com"}]
    assert request.status == Status.CONFIRMED
    assert request.confirmed_at is not None
    assert len(broker_api.posts) == 1


@pytest.fixture
def still_listed(broker_api, subscription):
    """A request to a broker (re-check after 10 days) whose search keeps finding the person."""
    broker_api.broker(recheck_after_days=10)
    broker_api.listed.add(PERSON["email"])
    (request,) = removal_requests_create(subscription, PERSON)
    return request


def test_still_listed_is_submitted_again_at_most_three_times_then_fails(broker_api, still_listed, run_worker):
    request = still_listed
    with time_machine.travel(timezone.now(), tick=False) as clock:
        process(run_worker)
        for _ in range(3):
            clock.shift(timedelta(days=11))
            process(run_worker)

    request.refresh_from_db()
    assert [post["idempotency_key"] for post in broker_api.posts] == [f"removal-{request.pk}-{n}" for n in (1, 2, 3)]
    assert len(broker_api.searches) == 3
    assert request.status == Status.FAILED
    assert request.submissions == 3
    assert request.last_error == "still listed after 3 submissions"


def test_still_listed_then_gone_after_the_second_submission_is_confirmed(broker_api, still_listed, run_worker):
    request = still_listed
    with time_machine.travel(timezone.now(), tick=False) as clock:
        process(run_worker)
        clock.shift(timedelta(days=11))
        process(run_worker)
        request.refresh_from_db()
        assert (request.status, request.submissions) == (Status.SUBMITTED, 2)

        broker_api.listed.clear()
        clock.shift(timedelta(days=11))
        process(run_worker)

    request.refresh_from_db()
    assert request.status == Status.CONFIRMED
    assert len(broker_api.posts) == 2


def test_a_request_claimed_by_another_pass_is_left_alone_until_its_claim_runs_out(broker_api, subscription):
    broker_api.broker()
    (request,) = removal_requests_create(subscription, PERSON)

    with time_machine.travel(timezone.now(), tick=False) as clock:
        # A pass claims the request and dies before doing anything with it.
        token, claimed = RemovalEngine()._claim()
        assert [row.pk for row in claimed] == [request.pk]

        RemovalEngine().run()
        assert broker_api.posts == []

        clock.shift(timedelta(minutes=6))
        RemovalEngine().run()

    request.refresh_from_db()
    assert request.status == Status.SUBMITTED
    assert len(broker_api.posts) == 1
    # The dead pass's late write is refused: its claim is gone.
    dead = RemovalEngine()
    dead._save(request, token, status=Status.FAILED)
    assert dead._flush() == 0
    request.refresh_from_db()
    assert request.status == Status.SUBMITTED


def test_a_flush_writes_only_the_requests_whose_claim_is_still_ours(broker_api):
    broker_api.broker()
    first, second = (removal_requests_create(SubscriptionFactory(), PERSON)[0] for _ in range(2))
    engine = RemovalEngine()
    token, claimed = engine._claim()
    assert {row.pk for row in claimed} == {first.pk, second.pk}
    # The claim on `second` ran out and another pass took it over.
    RemovalRequest.objects.filter(pk=second.pk).update(claim_token="other-pass")

    for row in claimed:
        engine._save(row, token, status=Status.FAILED, last_error="from the first pass")

    assert engine._flush() == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.claim_token) == (Status.FAILED, "")
    assert (second.status, second.claim_token, second.last_error) == (Status.PENDING, "other-pass", "")


def test_the_rate_limit_holds_submissions_until_a_slot_frees(broker_api, run_worker):
    broker_api.broker(rate_limit_per_minute=3)
    requests = [removal_requests_create(SubscriptionFactory(), PERSON)[0] for _ in range(5)]

    with time_machine.travel(timezone.now(), tick=False) as clock:
        process(run_worker)
        assert len(broker_api.posts) == 3
        assert sum(run.result["rate_limited"] for run in JobRun.objects.filter(status="completed")) >= 1
        waiting = RemovalRequest.objects.filter(status=Status.PENDING)
        assert waiting.count() == 2
        assert all(row.next_attempt_at == timezone.now() + timedelta(seconds=60) for row in waiting)

        clock.shift(timedelta(seconds=59))
        process(run_worker)
        assert len(broker_api.posts) == 3

        clock.shift(timedelta(seconds=2))
        process(run_worker)

    assert len(broker_api.posts) == 5
    assert {row.status for row in RemovalRequest.objects.filter(pk__in=[r.pk for r in requests])} == {Status.SUBMITTED}


@pytest.fixture
def notify_calls(monkeypatch):
    """Every notify() call RemoveBrokers makes, recorded on the way to issue 8's real notify()."""
    import notifications.services

    calls = []
    real = notifications.services.notify

    def recording(user, kind, context, **options):
        calls.append((user, kind, context, options))
        return real(user, kind, context, **options)

    monkeypatch.setattr(notifications.services, "notify", recording)
    return calls


@needs_notify
def test_notify_a_manual_broker_sends_needs_action_now_and_a_reminder_later(
    subscription, run_worker, settings, notify_calls
):
    settings.REMOVEBROKERS_REMINDER_DAYS = 7
    DataBroker.objects.create(
        name="Paper Pages", method="manual", endpoint="https://paperpages.example/optout", instructions="Use the form."
    )
    removal_requests_create(subscription, PERSON)

    with time_machine.travel(timezone.now(), tick=False):
        process(run_worker)
        process(run_worker)
        now = timezone.now()

    assert [(user, kind) for user, kind, _, _ in notify_calls] == [
        (subscription.user, "removebrokers.needs_action"),
        (subscription.user, "reminder"),
    ]
    needs_action, reminder = notify_calls
    assert needs_action[2] == {
        "subscription_id": subscription.pk,
        "broker": "Paper Pages",
        "instructions": "Use the form. Opt-out page: https://paperpages.example/optout",
    }
    assert reminder[3]["send_at"] == now + timedelta(days=7)
    assert "Paper Pages" in reminder[2]["message"]


@needs_notify
def test_notify_a_confirmed_removal_tells_the_customer(broker_api, subscription, run_worker, notify_calls):
    broker_api.broker(recheck_after_days=1)
    removal_requests_create(subscription, PERSON)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        process(run_worker)
        clock.shift(timedelta(days=2))
        process(run_worker)
        process(run_worker)

    assert [(kind, context) for _, kind, context, _ in notify_calls] == [
        ("removebrokers.confirmed", {"subscription_id": subscription.pk, "broker": "peoplefinder"})
    ]


def test_a_manual_opt_out_the_customer_did_is_re_checked_like_the_others(broker_api, subscription, run_worker):
    from scanners.removebrokers.services import removal_requests_mark_done_by_user

    broker_api.broker(method="manual", recheck_after_days=5)
    (request,) = removal_requests_create(subscription, PERSON)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        process(run_worker)
        assert removal_requests_mark_done_by_user(RemovalRequest.objects.all()) == 1
        assert removal_requests_mark_done_by_user(RemovalRequest.objects.all()) == 0
        clock.shift(timedelta(days=5, seconds=1))
        process(run_worker)

    request.refresh_from_db()
    assert request.status == Status.CONFIRMED
    assert broker_api.posts == [] and len(broker_api.searches) == 1


def test_a_pass_overlaps_broker_calls_up_to_the_configured_concurrency_with_the_sequential_outcomes(
    subscription, settings
):
    def broker_answer(method, path, query, body):
        if method == "GET":
            return 200, {"listed": False}
        sent = json.loads(body)
        if sent["email"] == "p3@example.com":
            return 503, {"message": "try later"}
        if sent["email"] == "p5@example.com":
            return 422, {"message": "unknown person"}
        return 201, {"reference": f"ref-{sent['email']}"}

    def outcomes():
        return sorted(
            (request.person["email"], request.status, request.broker_reference, request.last_error[:40])
            for request in RemovalRequest.objects.all()
        )

    results = {}
    for concurrency in (1, 3):
        RemovalRequest.objects.all().delete()
        DataBroker.objects.all().delete()
        settings.REMOVEBROKERS_CONCURRENCY = concurrency
        with ProviderServer(broker_answer, delay=0.03) as server:
            DataBroker.objects.create(
                name="overlapped",
                method=DataBroker.Method.API,
                endpoint=f"{server.url}/optout",
                search_url=f"{server.url}/search",
                required_fields=["full_name", "email"],
                rate_limit_per_minute=1000,
            )
            for n in range(10):
                removal_requests_create(SubscriptionFactory(), {**PERSON, "email": f"p{n}@example.com"})
            report = RemovalEngine().run()
            results[concurrency] = (outcomes(), server.max_in_flight, report.submitted, report.failed)

    assert results[1][1] == 1 and results[3][1] == 3  # overlapped, never above the setting
    assert results[3][0] == results[1][0]  # the same outcome for every request
    assert (results[3][2], results[3][3]) == (8, 1) == (results[1][2], results[1][3])
    by_email = {email: (status, reference) for email, status, reference, _ in results[3][0]}
    assert by_email["p0@example.com"] == (Status.SUBMITTED, "ref-p0@example.com")
    assert by_email["p3@example.com"][0] == Status.PENDING and by_email["p5@example.com"][0] == Status.FAILED
