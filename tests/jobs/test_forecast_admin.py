"""The load forecast in the admin: the dashboard's chart, and the SchedulerConfig confirmation step."""

import datetime as dt

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from jobs.models import PeriodicJob, Schedule, SchedulerConfig
from jobs.scheduling import schedules_sync_tier
from tests.factories import SubscriptionFactory

# These count the schedules they make: the built-in jobs (migration 0006) would add their own.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_builtin_jobs")]
NOW = dt.datetime(2026, 6, 1, 9, 10, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def clock():
    cache.clear()  # the dashboard keeps its forecast a minute
    with time_machine.travel(NOW, tick=False):
        yield
    cache.clear()


def form_data(config: SchedulerConfig, **changes) -> dict:
    data = {
        "tier": config.tier,
        "job_type": config.job_type,
        "enabled": "on" if config.enabled else "",
        "description": config.description,
        "frequency": config.frequency,
        "cron_expression": config.cron_expression,
        "priority": config.priority,
        "overlap": config.overlap,
        "catch_up": config.catch_up,
        "run_on_change": "on" if config.run_on_change else "",
        "_save": "Save",
    }
    data.update(changes)
    return {name: value for name, value in data.items() if value != ""}


def test_the_dashboard_charts_the_next_7_days_per_job_type_with_the_peak(admin_client, tier_configs):
    job = PeriodicJob.objects.create(name="every ten", job_type="jobs.prune", cron_expression="*/10 * * * *")
    Schedule.objects.create(periodic_job=job, cron_expression="*/10 * * * *", next_run_at=timezone.now())
    for _ in range(2):
        SubscriptionFactory(tier="premium")
    schedules_sync_tier("premium")

    page = admin_client.get("/admin/jobs/jobrun/dashboard/").content.decode()

    assert 'id="kj-forecast"' in page and "<svg" in page
    assert "jobs.prune: 1008" in page  # 6 an hour for 168 hours
    assert "darkwatch.scan: 336" in page  # two hourly Premium schedules
    assert 'class="kj-peak"' in page and 'class="mark"' in page


def test_the_dashboard_says_when_nothing_is_scheduled(admin_client):
    page = admin_client.get("/admin/jobs/jobrun/dashboard/").content.decode()
    assert "No schedule runs in the next 168 hours." in page


def test_a_timing_change_asks_first_with_the_forecast_now_and_after(admin_client, tier_configs):
    for tz in ("UTC", "America/New_York"):
        SubscriptionFactory(tier="plus", timezone=tz)
    schedules_sync_tier("plus")
    config = SchedulerConfig.objects.get(tier="plus", job_type="darkwatch.scan")  # weekly
    url = f"/admin/jobs/schedulerconfig/{config.pk}/change/"

    ask = admin_client.post(url, form_data(config, frequency="daily"))

    page = ask.content.decode()
    assert ask.status_code == 200 and 'id="kj-forecast-change"' in page
    assert 'id="kj-forecast-before"' in page and 'id="kj-forecast-after"' in page
    assert "darkwatch.scan: 2<" in page and "darkwatch.scan: 14<" in page  # weekly now, daily after
    assert "changes frequency" in page
    config.refresh_from_db()
    assert config.frequency == "weekly"  # nothing saved yet

    done = admin_client.post(url, {**form_data(config, frequency="daily"), "_confirm_timing": "yes"})
    assert done.status_code == 302
    config.refresh_from_db()
    assert config.frequency == "daily"


def test_a_change_that_keeps_the_timing_saves_at_once(admin_client, tier_configs):
    config = SchedulerConfig.objects.get(tier="plus", job_type="darkwatch.scan")
    response = admin_client.post(
        f"/admin/jobs/schedulerconfig/{config.pk}/change/", form_data(config, description="Scans weekly")
    )
    assert response.status_code == 302
    config.refresh_from_db()
    assert config.description == "Scans weekly"


def test_a_bad_timing_is_refused_at_its_field_before_any_forecast(admin_client, tier_configs):
    config = SchedulerConfig.objects.get(tier="plus", job_type="darkwatch.scan")
    response = admin_client.post(
        f"/admin/jobs/schedulerconfig/{config.pk}/change/",
        form_data(config, frequency="", cron_expression="0 0 30 2 *"),
    )
    page = response.content.decode()
    assert "never runs" in page and "kj-forecast-change" not in page


def test_adding_a_config_asks_first_too(admin_client, tier_configs):
    SubscriptionFactory(tier="basic")
    data = {
        "tier": "basic",
        "job_type": "reports.generate",
        "enabled": "on",
        "cron_expression": "0 9 * * 1",
        "overlap": "skip",
        "catch_up": "one",
        "_save": "Save",
    }
    ask = admin_client.post("/admin/jobs/schedulerconfig/add/", data)
    assert 'id="kj-forecast-after"' in ask.content.decode() and "reports.generate: 1<" in ask.content.decode()
    assert not SchedulerConfig.objects.filter(tier="basic", job_type="reports.generate").exists()
    admin_client.post("/admin/jobs/schedulerconfig/add/", {**data, "_confirm_timing": "yes"})
    assert SchedulerConfig.objects.filter(tier="basic", job_type="reports.generate").exists()
