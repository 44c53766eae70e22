import datetime as dt

import pytest
import time_machine
from django.core.files.storage import default_storage

from jobs.models import JobRun, Schedule
from jobs.registry import ScheduleTick, registry
from jobs.scheduling import schedule_trigger_now
from notifications.models import Notification
from reports.models import Report
from reports.services import report_regenerate, report_request
from tests.factories import SubscriptionFactory, UserFactory
from tests.reports.conftest import PERIOD, add_alerts, pdf_text

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def owner_subscription():
    user = UserFactory(first_name="Grace", last_name="Hopper", email="grace@example.com")
    return SubscriptionFactory(user=user, tier="plus", timezone="Europe/Berlin")


def utc(*parts):
    return dt.datetime(*parts, tzinfo=dt.UTC)


def files_under(media):
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


def test_a_requested_report_runs_through_a_worker_and_notifies_once(owner_subscription, run_worker, media):
    add_alerts(owner_subscription, 5, breach_name="ShopLeak")
    run = report_request(owner_subscription, "on_demand", *PERIOD)
    run_worker()

    run.refresh_from_db()
    assert run.status == "completed", run.error
    assert run.progress == 100
    report = Report.objects.get()
    assert run.result["report_id"] == report.pk and report.status == "ready"
    with default_storage.open(report.file.name) as handle:
        assert "ShopLeak" in pdf_text(handle.read())[1]
    notes = Notification.objects.filter(kind="reports.ready", recipient=owner_subscription.user)
    assert notes.count() >= 1
    first_notes = set(notes.values_list("pk", flat=True))

    # The same findings render the same HTML, hence the same dedupe key: a repeated run (a retry
    # after the commit, or a regeneration of unchanged data) tells nobody twice.
    report_regenerate(report)
    run_worker()
    report.refresh_from_db()
    assert Report.objects.count() == 1
    assert len(files_under(media)) == 1
    same = Notification.objects.filter(kind="reports.ready", recipient=owner_subscription.user)
    assert set(same.values_list("pk", flat=True)) == first_notes


def test_a_weasyprint_failure_fails_the_run_at_once_and_stores_nothing(
    owner_subscription, run_worker, media, monkeypatch
):
    import weasyprint

    def broken_render(self, *args, **kwargs):
        raise RuntimeError("cairo exploded")

    # The library boundary: WeasyPrint itself raising is the failure under test.
    monkeypatch.setattr(weasyprint.HTML, "render", broken_render)
    run = report_request(owner_subscription, "on_demand", *PERIOD)
    run_worker()

    run.refresh_from_db()
    assert run.status == "failed" and run.attempt == 1
    assert "WeasyPrint could not render the report: RuntimeError: cairo exploded" in run.error
    report = Report.objects.get()
    assert (report.status, report.file.name) == ("failed", "")
    assert "cairo exploded" in report.error
    assert files_under(media) == []
    assert not Notification.objects.filter(kind="reports.ready").exists()


def test_a_failed_regeneration_keeps_the_last_good_file(owner_subscription, run_worker, media, monkeypatch):
    import weasyprint

    report_request(owner_subscription, "on_demand", *PERIOD)
    run_worker()
    good = Report.objects.get()
    monkeypatch.setattr(weasyprint.HTML, "render", lambda self, *a, **k: (_ for _ in ()).throw(OSError("disk")))

    report_regenerate(good)
    run_worker()

    report = Report.objects.get()
    assert (report.status, report.file.name, report.checksum) == ("ready", good.file.name, good.checksum)
    assert "disk" in report.error
    assert [p.relative_to(media).as_posix() for p in files_under(media)] == [good.file.name]


def test_a_run_for_a_deleted_subscription_fails_permanently(owner_subscription, run_worker):
    run = report_request(owner_subscription, "on_demand", *PERIOD)
    gone = owner_subscription.pk
    JobRun.objects.filter(pk=run.pk).update(subscription=None)
    owner_subscription.delete()
    run_worker()
    run.refresh_from_db()
    assert run.status == "failed" and run.attempt == 1
    assert f"subscription {gone} does not exist" in run.error
    assert not Report.objects.exists()


@pytest.mark.parametrize(
    ("frequency", "planned", "tz", "expected"),
    [
        # Tuesday 1 Dec 05:00 UTC is Monday 30 Nov in Los Angeles: the week that just ended is 23–29 Nov;
        # Monday 30 Nov 05:00 UTC is still Sunday 29 Nov there, so that week has not ended: 16–22 Nov.
        (
            "weekly",
            dt.datetime(2026, 12, 1, 5, tzinfo=dt.UTC),
            "America/Los_Angeles",
            ("weekly", "2026-11-23", "2026-11-29"),
        ),
        (
            "weekly",
            dt.datetime(2026, 11, 30, 5, tzinfo=dt.UTC),
            "America/Los_Angeles",
            ("weekly", "2026-11-16", "2026-11-22"),
        ),
        # 1 Nov 00:30 in Tokyo is still October in UTC: the month that just ended in Tokyo is October.
        (
            "monthly",
            dt.datetime(2026, 10, 31, 15, 30, tzinfo=dt.UTC),
            "Asia/Tokyo",
            ("monthly", "2026-10-01", "2026-10-31"),
        ),
        ("monthly", dt.datetime(2026, 3, 1, 0, 0, tzinfo=dt.UTC), "UTC", ("monthly", "2026-02-01", "2026-02-28")),
    ],
)
def test_a_tick_reports_the_period_that_just_ended_in_the_subscribers_timezone(frequency, planned, tz, expected):
    job_type = registry.get("reports.generate")
    payload = job_type.validate(job_type.schedule_payload(ScheduleTick(7, planned, frequency, tz)))
    assert (payload.kind, str(payload.period_start), str(payload.period_end)) == expected


@pytest.mark.usefixtures("tier_configs")
def test_a_plus_subscriptions_monthly_schedule_makes_last_months_report(run_worker, media):
    with time_machine.travel(dt.datetime(2026, 11, 3, 9, tzinfo=dt.UTC), tick=False):
        subscription = SubscriptionFactory(tier="plus", timezone="Europe/Berlin")
        schedule = Schedule.objects.get(subscription=subscription, config__job_type="reports.generate")
        run = schedule_trigger_now(schedule)  # planned_for is None: the period that ended before now
        run_worker()

    run.refresh_from_db()
    assert run.payload == {
        "subscription_id": subscription.pk,
        "kind": "monthly",
        "period_start": "2026-10-01",
        "period_end": "2026-10-31",
    }
    assert run.status == "completed", run.error
    assert Report.objects.filter(subscription=subscription, kind="monthly", status="ready").count() == 1


def test_a_customers_periodic_report_covers_the_last_days_up_to_yesterday_on_their_clock(
    owner_subscription, run_worker
):
    from jobs.periodic import periodic_job_create, periodic_job_trigger_now

    job = periodic_job_create(
        name="weekly",
        owner=owner_subscription.user,
        job_type="reports.recent",
        payload={"subscription_id": owner_subscription.pk, "days": 7},
        cron_expression="0 9 * * 1",
        timezone="Europe/Berlin",
    )
    # 23:30 UTC on Sunday 8 November is already Monday the 9th in Berlin: yesterday there is the 8th.
    with time_machine.travel(utc(2026, 11, 8, 23, 30), tick=False):
        run = periodic_job_trigger_now(job)
        run_worker()
    run.refresh_from_db()
    assert run.status == "completed", run.error
    report = Report.objects.get()
    assert (report.kind, report.period_start, report.period_end) == (
        "on_demand",
        dt.date(2026, 11, 2),
        dt.date(2026, 11, 8),
    )
    assert report.status == "ready"


def test_reports_recent_is_open_to_customers_only_for_their_own_subscription(owner_subscription):
    declared = registry.get("reports.recent")
    payload = declared.validate({"subscription_id": owner_subscription.pk})
    assert declared.customer_check(payload, owner_subscription.user) == {}
    stranger = UserFactory()
    assert "subscription_id" in declared.customer_check(payload, stranger)
    assert registry.customer_names() == ["reports.recent"]
