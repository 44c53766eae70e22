"""Issue 16 item 2: one report request must not hold a worker for minutes and gigabytes.

The period is bounded (and impossible ones refused) in the payload schema the API, the admin's
enqueue page and the worker all validate against; a report's memory follows the rows it reads,
not the number of days in its period; a deterministic error fails at once; and a customer has
only a few reports waiting at a time.
"""

import contextlib
import datetime as dt
import threading
import tracemalloc

import pytest

from jobs import enqueue
from jobs.errors import PayloadInvalid
from jobs.models import JobRun
from reports.errors import ReportQueueFull
from reports.handler import GeneratePayload
from reports.periods import MAX_PERIOD_DAYS, REPORT_PERIOD_FIRST_DAY, REPORT_PERIOD_LAST_DAY
from reports.selectors import report_data
from reports.services import report_request
from tests.api.conftest import error_of
from tests.factories import SubscriptionFactory
from tests.reports.conftest import add_alerts, media  # noqa: F401  (media: reports land in tmp)

pytestmark = pytest.mark.django_db


def post_report(client, subscription, start, end):
    return client.post(
        "/api/v1/reports/",
        {"subscription": subscription.pk, "period_start": str(start), "period_end": str(end)},
        format="json",
    )


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("0001-01-01", "9999-12-31", "period_end"),  # OverflowError in the worker, retried, e-mailed staff
        ("2000-01-01", "2099-12-31", "period_end"),  # a century (200 years took 37 s and 1.7 GB)
        ("2026-01-01", "2027-01-02", "period_end"),  # one day over the bound
        ("0001-01-01", "0001-01-07", "period_start"),  # a short period whose previous period is before year 1
        ("9999-12-25", "9999-12-31", "period_end"),  # ... and one at the end of the calendar
        ("2026-10-15", "2026-10-01", "period_end"),  # backwards
    ],
)
def test_an_impossible_or_unbounded_period_is_a_400_and_queues_nothing(api, alice, start, end, field):
    response = post_report(api.as_user(alice), alice.subscriptions.get(), start, end)
    assert response.status_code == 400, response.content
    assert field in error_of(response)["fields"], response.json()
    assert not JobRun.objects.exists()


def test_the_longest_allowed_period_is_accepted(api, alice):
    start = dt.date(2024, 1, 1)
    end = start + dt.timedelta(MAX_PERIOD_DAYS - 1)
    response = post_report(api.as_user(alice), alice.subscriptions.get(), start, end)
    assert response.status_code == 202, response.json()


def test_the_payload_schema_itself_refuses_the_period_so_admin_enqueue_does_too(alice):
    # The admin's enqueue page and the worker validate through the job type's schema, not the API serializer.
    subscription = alice.subscriptions.get()
    with pytest.raises(PayloadInvalid) as refused:
        enqueue(
            "reports.generate",
            {
                "subscription_id": subscription.pk,
                "kind": "on_demand",
                "period_start": "0001-01-01",
                "period_end": "9999-12-31",
            },
        )
    assert "period_end" in refused.value.errors
    assert not JobRun.objects.exists()
    for day in (REPORT_PERIOD_FIRST_DAY, REPORT_PERIOD_LAST_DAY):
        GeneratePayload(subscription_id=1, kind="weekly", period_start=day, period_end=day)


def test_a_reports_memory_follows_its_rows_not_the_length_of_its_period(db):
    """A year and a week with the same five alerts cost about the same to compile (the chart is bucketed)."""
    subscription = SubscriptionFactory(timezone="UTC")
    add_alerts(subscription, 5, start=dt.datetime(2026, 10, 2, 15, tzinfo=dt.UTC))

    def peak(start, end):
        tracemalloc.start()
        data = report_data(subscription, start, end)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top, data

    week_peak, _ = peak(dt.date(2026, 10, 1), dt.date(2026, 10, 7))
    year_peak, year = peak(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    assert len(year["darkwatch"]["per_day"]) <= 62
    assert sum(count for _, count in year["darkwatch"]["per_day"]) == 5
    assert year_peak < 2 * week_peak + 64 * 1024, (week_peak, year_peak)


@pytest.mark.django_db(transaction=True)
def test_an_overflow_in_the_worker_fails_the_run_at_once(alice, run_worker, monkeypatch):
    """Bad data fails the same way every time: one attempt, no retries, no alert storm."""
    import reports.services

    def overflow(*args, **kwargs):
        raise OverflowError("date value out of range")

    monkeypatch.setattr(reports.services, "report_data", overflow)
    run = report_request(alice.subscriptions.get(), "on_demand", dt.date(2026, 10, 1), dt.date(2026, 10, 7))
    run_worker()
    run.refresh_from_db()
    assert (run.status, run.attempt, run.error_type) == ("failed", 1, "PermanentJobError"), run.error
    assert "out of range" in run.error


def test_a_customer_has_only_a_few_reports_waiting(api, alice, staff, settings):
    settings.REPORTS_MAX_QUEUED_PER_CUSTOMER = 3
    client = api.as_user(alice)
    subscription = alice.subscriptions.get()
    for day in range(1, 4):
        assert post_report(client, subscription, f"2026-10-0{day}", f"2026-10-0{day}").status_code == 202
    # Asking again for a period already waiting is no new work: the same run.
    again = post_report(client, subscription, "2026-10-01", "2026-10-01")
    assert again.status_code == 202
    refused = post_report(client, subscription, "2026-10-05", "2026-10-05")
    assert refused.status_code == 429, refused.content
    error = error_of(refused)
    assert error["code"] == "too_many_reports_queued"
    assert "3 reports" in error["message"]
    assert JobRun.objects.count() == 3

    # A second subscription of the same customer shares the limit; staff are not limited.
    other = SubscriptionFactory(user=alice)
    assert post_report(client, other, "2026-10-05", "2026-10-05").status_code == 429
    assert post_report(api.as_user(staff), subscription, "2026-10-06", "2026-10-06").status_code == 202

    # Once one finishes, the customer may ask again.
    JobRun.objects.filter(payload__period_start="2026-10-01").update(status=JobRun.Status.COMPLETED)
    assert post_report(client, subscription, "2026-10-05", "2026-10-05").status_code == 202


def test_the_limit_is_the_services_so_every_door_shares_it(alice, settings):
    settings.REPORTS_MAX_QUEUED_PER_CUSTOMER = 1
    subscription = alice.subscriptions.get()
    report_request(subscription, "on_demand", dt.date(2026, 10, 1), dt.date(2026, 10, 1), user=alice)
    with pytest.raises(ReportQueueFull):
        report_request(subscription, "on_demand", dt.date(2026, 10, 2), dt.date(2026, 10, 2), user=alice)
    # Scheduled reports (no person asking) are not the customer's queue.
    report_request(subscription, "weekly", dt.date(2026, 10, 5), dt.date(2026, 10, 11))


@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_cannot_both_slip_under_the_limit(alice, settings, monkeypatch):
    """Each request counts the waiting reports, then enqueues; both counting before either enqueues
    would let a burst through. The owner's row lock makes the second count wait for the first."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time anyway")
    import reports.services

    settings.REPORTS_MAX_QUEUED_PER_CUSTOMER = 1
    subscription = alice.subscriptions.get()
    both_counted = threading.Barrier(2, timeout=1)
    real_enqueue = reports.services.enqueue

    def enqueue_after_both_counted(*args, **kwargs):
        # Without the lock both threads get here and pass together; with it, the other waits on the
        # lock and this barrier times out alone.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_counted.wait()
        return real_enqueue(*args, **kwargs)

    monkeypatch.setattr(reports.services, "enqueue", enqueue_after_both_counted)
    outcomes = []

    def ask(day):
        try:
            report_request(subscription, "on_demand", dt.date(2026, 10, day), dt.date(2026, 10, day), user=alice)
            outcomes.append("queued")
        except ReportQueueFull:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(day,)) for day in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["queued", "refused"]
    assert JobRun.objects.count() == 1
