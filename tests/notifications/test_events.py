"""Job and resource events for webhook endpoints (notifications/events.py): who gets which event,
once per change, only after commit, and end to end through a burst worker to a local receiver."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from werkzeug import Response

from jobs import enqueue
from jobs.services import delayed_runs_push_due
from notifications.events import event_subscribers, job_events_emit, resource_changed
from notifications.models import Notification, WebhookDelivery, WebhookEndpoint
from scanners.darkwatch.models import Alert, Watchlist
from scanners.services import findings_set_status
from tests.factories import SubscriptionFactory, UserFactory
from tests.notifications import serve_in_turn
from tests.scanners.factories import BreachFactory, WatchlistFactory, WatchlistItemFactory

pytestmark = pytest.mark.django_db(transaction=True)


def staff_endpoint(url="http://127.0.0.1:9/hooks", **fields):
    owner = UserFactory(is_staff=True)
    return WebhookEndpoint.objects.create(owner=owner, url=url, **{"kinds": ["job.*"], **fields})


def events_of(endpoint, prefix=""):
    rows = Notification.objects.filter(webhook_endpoint=endpoint, kind__startswith=prefix).order_by("pk")
    return [(row.kind, row.context) for row in rows]


def make_alert(subscription, **fields):
    watchlist = Watchlist.objects.filter(subscription=subscription).first()
    watchlist = watchlist or WatchlistFactory(subscription=subscription)
    item = WatchlistItemFactory(watchlist=watchlist)
    return Alert.objects.create(
        subscription=subscription,
        item=item,
        breach=BreachFactory(),
        severity="high",
        first_seen=timezone.now(),
        **fields,
    )


# --- job events -----------------------------------------------------------------------------


def test_job_events_reach_a_staff_endpoint_through_a_burst_worker(run_worker, httpserver):
    received = serve_in_turn(httpserver, "/hooks", Response("ok", status=200))
    endpoint = staff_endpoint(httpserver.url_for("/hooks"), kinds=["job.completed"])
    run = enqueue("jobs.ping", {"message": "hello"})

    run_worker()  # the ping, then the event's send job it queued

    (request,) = received
    body = json.loads(request.get_data())
    assert request.headers["Kordant-Event"] == "job.completed"
    assert body["kind"] == "job.completed"
    assert body["data"]["job_run_id"] == str(run.pk) and body["data"]["status"] == "completed"
    assert body["data"]["job_type"] == "jobs.ping" and body["data"]["attempt"] == 1
    # The delivery log holds the request exactly as it went out.
    (delivery,) = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert delivery.succeeded and delivery.status_code == 200
    assert delivery.request_body.encode() == request.get_data()
    assert delivery.request_headers["kordant-delivery"] == request.headers["Kordant-Delivery"]
    assert delivery.url == endpoint.url
    # Delivering the event is a notifications.send run: it makes no job event of its own.
    assert [kind for kind, _ in events_of(endpoint)] == ["job.completed"]


def test_job_failed_is_sent_only_after_the_last_attempt_and_retrying_between(run_worker):
    endpoint = staff_endpoint()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        run = enqueue("tests.fail", {"message": "provider down"})
        for delay in (60, 300, 900):
            run_worker("default")
            clock.shift(timedelta(seconds=delay))
            delayed_runs_push_due()
        run_worker("default")

    events = events_of(endpoint)
    assert [kind for kind, _ in events] == ["job.retrying"] * 3 + ["job.failed"]
    assert [context["attempt"] for _, context in events] == [1, 2, 3, 4]
    assert all(context["job_run_id"] == str(run.pk) for _, context in events)
    assert events[0][1]["next_attempt_at"] is not None
    assert events[-1][1]["error"] == "provider down"  # staff see the error


def test_the_job_type_filter_and_the_event_names_choose_what_an_endpoint_gets(run_worker):
    only_permanent = staff_endpoint(job_types=["tests.permanent"])
    only_cancelled = staff_endpoint(kinds=["job.cancelled"])
    enqueue("jobs.ping", {"message": "hi"})
    enqueue("tests.permanent", {"message": "no"})
    waiting = enqueue("jobs.ping", {"message": "later"}, delay=3600)
    run_worker("default", "low", "high")
    from jobs.services import job_run_cancel

    job_run_cancel(waiting)

    assert [kind for kind, _ in events_of(only_permanent)] == ["job.failed"]
    assert [(kind, context["job_type"]) for kind, context in events_of(only_cancelled)] == [
        ("job.cancelled", "jobs.ping")
    ]


def test_a_customer_endpoint_gets_job_events_only_for_runs_about_their_own_subscriptions(run_worker):
    mine, theirs = SubscriptionFactory(), SubscriptionFactory()
    endpoint = WebhookEndpoint.objects.create(owner=mine.user, url="http://127.0.0.1:9/hooks", kinds=["job.*"])
    own = enqueue("tests.permanent", {"message": "secret internals"}, subscription=mine)
    enqueue("tests.permanent", {"message": "someone else"}, subscription=theirs)
    enqueue("tests.permanent", {"message": "no subscription"})
    run_worker("default")

    ((kind, context),) = events_of(endpoint)
    assert (kind, context["job_run_id"], context["subscription_id"]) == ("job.failed", str(own.pk), mine.pk)
    assert context["error"] == "" and context["error_type"] == "PermanentJobError"  # no internals for customers


def test_with_no_subscribed_endpoint_a_transition_costs_no_query(django_assert_num_queries, run_worker):
    WebhookEndpoint.objects.create(owner=UserFactory(), url="http://127.0.0.1:9/hooks")  # notifications only
    run = enqueue("jobs.ping", {"message": "hi"})
    run_worker("low", "default", "high")
    event_subscribers()  # the cache is warm, as on a running worker
    with django_assert_num_queries(0):
        assert job_events_emit(run.pk, "completed", "jobs.ping") == []
    # Subscribers to other job types, and event deliveries' own runs, cost no query either.
    staff_endpoint(job_types=["darkwatch.scan"])
    event_subscribers()
    with django_assert_num_queries(0):
        assert job_events_emit(run.pk, "completed", "jobs.ping") == []
        assert job_events_emit(run.pk, "completed", "notifications.send") == []
    assert not Notification.objects.filter(kind__startswith="job.").exists()


# --- resource events ------------------------------------------------------------------------


@pytest.fixture
def customer_endpoint():
    subscription = SubscriptionFactory()
    endpoint = WebhookEndpoint.objects.create(
        owner=subscription.user, url="http://127.0.0.1:9/hooks", kinds=["alert.*", "report.created"]
    )
    return subscription, endpoint


def test_an_event_fires_once_per_change_when_a_transaction_saves_the_row_several_times(customer_endpoint):
    subscription, endpoint = customer_endpoint
    with transaction.atomic():
        alert = make_alert(subscription)
        for severity in ("medium", "critical"):
            alert.severity = severity
            alert.save()
        assert events_of(endpoint) == []  # nothing before the commit

    ((kind, context),) = events_of(endpoint)
    assert kind == "alert.created"
    assert (context["subscription_id"], context["action"]) == (subscription.pk, "created")
    assert context["resource_id"] == alert.pk
    assert context["object"]["severity"] == "critical"  # the final state
    assert context["object"]["item"]["masked"]  # rendered as the API renders it (the masked item)

    with transaction.atomic():
        findings_set_status(Alert.objects.filter(pk=alert.pk), "acknowledged")  # a queryset update
        alert.refresh_from_db()
        alert.severity = "low"
        alert.save()
    kinds = [(kind, data["object"]["status"], data["object"]["severity"]) for kind, data in events_of(endpoint)]
    assert kinds == [("alert.created", "new", "critical"), ("alert.updated", "acknowledged", "low")]
    event_ids = [context["event_id"] for _, context in events_of(endpoint)]
    assert len(set(event_ids)) == 2

    # The same rows announced again (a retried writer) make no second event: the id is stable.
    resource_changed("alert", "updated", [alert.pk])
    assert len(events_of(endpoint)) == 2


def test_nothing_fires_for_a_rolled_back_change(customer_endpoint):
    subscription, endpoint = customer_endpoint
    with pytest.raises(RuntimeError), transaction.atomic():
        make_alert(subscription)
        raise RuntimeError("the scan failed")
    with transaction.atomic():
        kept = make_alert(subscription)
        try:
            with transaction.atomic():  # a savepoint rolled back inside a transaction that commits
                kept.severity = "critical"
                kept.save()
                make_alert(subscription)
                raise RuntimeError("one item failed")
        except RuntimeError:
            pass

    ((kind, context),) = events_of(endpoint)
    assert (kind, context["resource_id"], context["object"]["severity"]) == ("alert.created", kept.pk, "high")
    assert Alert.objects.count() == 1


def test_another_customers_events_never_reach_an_endpoint(customer_endpoint):
    subscription, endpoint = customer_endpoint
    other = SubscriptionFactory()
    others_endpoint = WebhookEndpoint.objects.create(
        owner=other.user, url="http://127.0.0.1:9/other", kinds=["alert.*"]
    )
    staff_everything = staff_endpoint(kinds=["alert.*", "job.*"])
    theirs = make_alert(other)
    mine = make_alert(subscription)

    assert [context["resource_id"] for _, context in events_of(endpoint)] == [mine.pk]
    assert [context["resource_id"] for _, context in events_of(others_endpoint)] == [theirs.pk]
    assert events_of(staff_everything) == []  # staff have no subscription of their own here


def test_a_deleted_resource_is_sent_as_it_was(customer_endpoint):
    subscription, endpoint = customer_endpoint
    alert = make_alert(subscription)
    pk = alert.pk
    alert.delete()

    kinds = [(kind, context["resource_id"], context["object"]["id"]) for kind, context in events_of(endpoint)]
    assert kinds == [("alert.created", pk, pk), ("alert.deleted", pk, pk)]


def test_endpoints_that_did_not_ask_get_no_events(customer_endpoint):
    subscription, _ = customer_endpoint
    everything = WebhookEndpoint.objects.create(owner=subscription.user, url="http://127.0.0.1:9/all")
    make_alert(subscription)
    assert events_of(everything) == []  # an empty kinds list means every notification kind, not events


def test_schedules_made_by_a_subscription_sync_are_announced_to_its_owner(tier_configs):
    from jobs.models import Schedule

    owner = UserFactory()
    endpoint = WebhookEndpoint.objects.create(owner=owner, url="http://127.0.0.1:9/hooks", kinds=["schedule.*"])
    subscription = SubscriptionFactory(user=owner)  # its schedules are bulk-written after commit

    schedules = set(Schedule.objects.filter(subscription=subscription).values_list("pk", flat=True))
    assert schedules
    events = events_of(endpoint)
    assert {kind for kind, _ in events} == {"schedule.created"}
    assert {context["resource_id"] for _, context in events} == schedules
    assert all(context["object"]["subscription"] == subscription.pk for _, context in events)


def test_a_completion_reads_nothing_more_when_the_subscribers_want_other_job_types():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from jobs.models import JobRun
    from jobs.services import EnqueueRequest, enqueue_many, job_run_mark_completed

    runs = enqueue_many([EnqueueRequest("jobs.ping", {"message": "hi"}) for _ in range(2)])
    JobRun.objects.filter(pk__in=[run.pk for run in runs]).update(status="running", attempt=1)
    staff_endpoint(job_types=["darkwatch.scan"])
    job_run_mark_completed(JobRun.objects.get(pk=runs[0].pk), {}, "worker")  # warms the subscriber cache
    run = JobRun.objects.get(pk=runs[1].pk)

    with CaptureQueriesContext(connection) as queries:
        assert job_run_mark_completed(run, {}, "worker")
    reads = [query["sql"] for query in queries.captured_queries if query["sql"].lstrip().upper().startswith("SELECT")]
    assert reads == []  # the transition's own UPDATE and event, nothing for job events
    assert not Notification.objects.filter(kind__startswith="job.").exists()


def test_a_status_change_outside_any_transaction_is_sent_with_the_new_status(customer_endpoint):
    subscription, endpoint = customer_endpoint
    alert = make_alert(subscription)
    findings_set_status(Alert.objects.filter(pk=alert.pk), "resolved")  # as the admin action calls it

    statuses = [(kind, context["object"]["status"]) for kind, context in events_of(endpoint)]
    assert statuses == [("alert.created", "new"), ("alert.updated", "resolved")]


def test_junk_in_an_endpoints_lists_is_refused_by_clean_and_ignored_if_stored(customer_endpoint):
    from django.core.exceptions import ValidationError

    subscription, endpoint = customer_endpoint
    endpoint.kinds, endpoint.job_types = ["alert.*", "alert.exploded", {"x": 1}], ["no.such.type", ["x"]]
    with pytest.raises(ValidationError) as refused:
        endpoint.full_clean()
    assert set(refused.value.message_dict) == {"kinds", "job_types"}
    # Saved past validation (a shell, a fixture): events still flow, the junk counts for nothing.
    endpoint.save()
    make_alert(subscription)
    assert [kind for kind, _ in events_of(endpoint)] == ["alert.created"]


def test_resource_events_reach_the_owners_receiver_through_a_burst_worker(run_worker, httpserver):
    received = serve_in_turn(httpserver, "/hooks", Response("ok", status=200))
    subscription = SubscriptionFactory()
    WebhookEndpoint.objects.create(owner=subscription.user, url=httpserver.url_for("/hooks"), kinds=["alert.created"])
    alert = make_alert(subscription)

    run_worker("high")

    (request,) = received
    body = json.loads(request.get_data())
    assert request.headers["Kordant-Event"] == "alert.created"
    assert (body["data"]["resource"], body["data"]["resource_id"]) == ("alert", alert.pk)
    assert body["data"]["object"]["id"] == alert.pk and body["data"]["subscription_id"] == subscription.pk
