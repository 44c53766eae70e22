"""The operator console in a real browser: what an operator clicks, with a real worker process running jobs."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import dispatch, enqueue
from jobs.models import JobRun, Schedule
from jobs.scheduling import scheduler_heartbeat_write
from jobs.services import job_run_mark_failed, job_run_mark_running
from kordant.models import Subscription
from tests.factories import UserFactory
from tests.jobs.handlers import blpop_within, release_key, started_key

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_log_in_create_a_premium_subscription_and_see_its_schedules(page, live_server, tier_configs):
    customer = UserFactory(username="pat")
    page.goto(f"{live_server.url}/admin/kordant/subscription/add/")
    page.fill("#id_user", str(customer.pk))
    page.select_option("#id_tier", "premium")
    page.fill("#id_timezone", "Europe/Paris")
    page.click("input[name=_continue]")

    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    subscription = Subscription.objects.get(user=customer)
    assert subscription.tier == "premium"
    # The schedules the tier gives it, listed on its own page (reload: they are made after commit).
    page.reload()
    inline = page.locator("#schedules-group")
    for job_type in ("darkwatch.scan", "hometitle.scan", "reports.generate"):
        expect(inline).to_contain_text(job_type)
    expect(inline).to_contain_text("Europe/Paris")

    page.goto(f"{live_server.url}/admin/jobs/schedule/?q={customer.username}")
    expect(page.locator("#result_list tbody tr")).to_have_count(
        Schedule.objects.filter(subscription=subscription).count()
    )
    expect(page.locator("#result_list")).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d CE[S]?T"))


def test_enqueue_a_job_from_the_page_and_watch_it_complete(page, live_server, worker_process, screenshot):
    worker_process()
    page.goto(f"{live_server.url}/admin/jobs/jobrun/enqueue/")
    page.select_option("#id_job_type", "jobs.ping")
    page.click("#kj-choose input[type=submit]")
    page.fill("#id_payload-message", "hello from the browser")
    page.select_option("#id_options-priority", "high")
    page.click("#kj-enqueue input[type=submit]")

    expect(page.locator(".messagelist")).to_contain_text("Enqueued jobs.ping")
    # The run's page reloads itself until the run ends; the worker process runs it meanwhile.
    expect(page.locator(".field-status_badge .kj-badge")).to_have_text("completed", timeout=30_000)
    run = JobRun.objects.get(job_type="jobs.ping")
    assert run.result == {"message": "hello from the browser"} and run.queue == "high"
    expect(page.locator("#events-group, .inline-group").first).to_contain_text("running")
    screenshot(page, "admin-jobrun.png")


def test_retry_a_failed_run_and_see_it_complete(page, live_server, worker_process):
    run = enqueue("jobs.ping", {"message": "second time lucky"}, delay=3600)
    claimed = job_run_mark_running(run.pk, "lost-worker")
    job_run_mark_failed(claimed, error="provider timed out", error_type="ProviderUnavailable", permanent=True)
    worker_process()

    page.goto(f"{live_server.url}/admin/jobs/jobrun/?status=failed")
    row = page.locator("#result_list tbody tr", has_text=str(run.pk)[:8])
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "retry")
    page.click("button[name=index]")
    expect(page.locator(".messagelist")).to_contain_text("1 job run retried")

    page.goto(f"{live_server.url}/admin/jobs/jobrun/{run.pk}/change/")
    expect(page.locator(".field-status_badge .kj-badge")).to_have_text("completed", timeout=30_000)
    expect(page.locator(".inline-group")).to_contain_text("retried by hand by admin")


def _busy_day():
    """Runs spread over the last 24 hours, some failed: something for the chart to draw."""
    now = timezone.now()
    for hours_ago in range(0, 24, 2):
        for n in range(1 + hours_ago % 5):
            run = enqueue("jobs.ping", {"message": f"{hours_ago}-{n}"}, delay=3600)
            failed = n == 0 and hours_ago % 3 == 0
            JobRun.objects.filter(pk=run.pk).update(
                created_at=now - timedelta(hours=hours_ago, minutes=5),
                started_at=now - timedelta(hours=hours_ago, minutes=4),
                finished_at=now - timedelta(hours=hours_ago, minutes=4) + timedelta(seconds=0.2 + n / 3),
                status="failed" if failed else "completed",
            )


def test_the_dashboard_draws_its_chart_and_counts(page, live_server, screenshot, worker_process, redis_conn):
    _busy_day()
    redis_conn.delete(dispatch.DELAYED_KEY)  # the made-up day's runs are history, not waiting
    scheduler_heartbeat_write("scheduler-1", last_pass_seconds=0.004, fired=2)
    page.goto(f"{live_server.url}/admin/")
    page.click("text=Jobs dashboard")
    chart = page.locator("#kj-chart svg")
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).to_have_count(24 + page.locator("#kj-chart svg rect.overlay").count())
    assert page.locator("#kj-chart svg rect.overlay").count() == 4  # hours 0, 6, 12 and 18 had a failure
    expect(page.locator(".kj-count-failed .kj-num")).to_have_text("4")
    expect(page.locator("#kj-types")).to_contain_text("jobs.ping")
    expect(page.locator("#kj-scheduler")).to_contain_text("scheduler-1")
    # A worker starts after the page was drawn: the page's own refresh (every 5 s) shows it.
    worker_process()
    expect(page.locator("#kj-workers caption")).to_have_text("Workers online: 1", timeout=20_000)
    screenshot(page, "admin-dashboard.png")


def test_pause_a_queue_and_see_its_jobs_wait_then_resume_it(page, live_server, worker_process, redis_conn):
    worker_process()
    page.goto(f"{live_server.url}/admin/jobs/jobrun/dashboard/")
    page.locator(".kj-queue-low button").click()
    expect(page.locator(".kj-queue-low")).to_contain_text("paused")

    waiting = enqueue("jobs.ping", {"message": "waits"}, priority="low")
    marker = enqueue("tests.block", {"name": "marker", "seconds": 10}, priority="default")
    assert blpop_within(redis_conn, started_key("marker"), 30), "the worker never started"
    redis_conn.rpush(release_key("marker"), "go")
    page.goto(f"{live_server.url}/admin/jobs/jobrun/{marker.pk}/change/")
    expect(page.locator(".field-status_badge .kj-badge")).to_have_text("completed", timeout=30_000)

    # The worker is alive and took later work from "default", yet the low job waits.
    page.goto(f"{live_server.url}/admin/jobs/jobrun/dashboard/")
    expect(page.locator(".kj-queue-low .kj-depth")).to_have_text("1")
    waiting.refresh_from_db()
    assert waiting.status == "queued"

    page.locator(".kj-queue-low button").click()
    expect(page.locator(".kj-queue-low")).to_contain_text("running")
    page.goto(f"{live_server.url}/admin/jobs/jobrun/{waiting.pk}/change/")
    expect(page.locator(".field-status_badge .kj-badge")).to_have_text("completed", timeout=30_000)
