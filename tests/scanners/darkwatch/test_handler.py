"""darkwatch.scan run the way production runs it: enqueued, then a burst worker."""

import io
import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from werkzeug import Response

from jobs import enqueue
from jobs.models import JobRun
from scanners.darkwatch.models import Alert, Breach
from scanners.darkwatch.services import breaches_import
from tests.scanners.factories import WatchlistItemFactory

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT_PATH = "/api/v3/breachedaccount/jane@example.com"


@pytest.fixture
def item():
    return WatchlistItemFactory(kind="email", value="jane@example.com")


@pytest.fixture
def hibp_only(settings, httpserver):
    settings.DARKWATCH_PROVIDERS = ["hibp"]
    settings.HIBP_BASE_URL = httpserver.url_for("")
    settings.HIBP_API_KEY = "test-key"


def scan(run_worker, subscription_id) -> JobRun:
    run = enqueue("darkwatch.scan", {"subscription_id": subscription_id})
    run_worker()
    run.refresh_from_db()
    return run


def test_a_scan_creates_alerts_notifies_once_and_a_rerun_adds_nothing(run_worker, item, mailoutbox):
    breaches_import(io.StringIO("breach,data_classes,kind,identifier\nAdobe,Passwords,email,jane@example.com\n"), "csv")
    first = scan(run_worker, item.watchlist.subscription_id)
    assert first.status == JobRun.Status.COMPLETED, first.error
    assert first.result == {
        "items": 1,
        "found": 1,
        "new_alerts": 1,
        "highest_severity": "critical",
        "notified_alerts": 1,
    }
    second = scan(run_worker, item.watchlist.subscription_id)
    assert second.result["new_alerts"] == 0
    assert second.result["notified_alerts"] == 0
    assert Alert.objects.count() == 1
    assert len(mailoutbox) == 1


def test_429_retries_the_run_after_retry_after(run_worker, item, hibp_only, httpserver):
    httpserver.expect_request(ACCOUNT_PATH).respond_with_response(
        Response(json.dumps({"statusCode": 429, "message": "Rate limit is exceeded."}), 429, {"Retry-After": "600"})
    )
    with time_machine.travel("2026-06-01 12:00:00+00:00", tick=False):
        run = scan(run_worker, item.watchlist.subscription_id)
        assert run.status == JobRun.Status.RETRYING
        assert run.next_attempt_at == timezone.now() + timedelta(seconds=600)
    assert "Rate limit is exceeded" in run.error


def test_401_fails_the_run_at_once(run_worker, item, hibp_only, httpserver):
    httpserver.expect_request(ACCOUNT_PATH).respond_with_json(
        {"statusCode": 401, "message": "Access denied due to invalid hibp-api-key."}, status=401
    )
    run = scan(run_worker, item.watchlist.subscription_id)
    assert run.status == JobRun.Status.FAILED
    assert run.attempt == 1
    assert "invalid hibp-api-key" in run.error


def test_malformed_json_writes_nothing(run_worker, item, hibp_only, httpserver):
    httpserver.expect_request(ACCOUNT_PATH).respond_with_data("[{broken", content_type="application/json")
    run = scan(run_worker, item.watchlist.subscription_id)
    assert run.status == JobRun.Status.RETRYING
    assert "not valid JSON" in run.error
    assert not Breach.objects.exists()
    assert not Alert.objects.exists()
    item.refresh_from_db()
    assert item.last_scanned_at is None


def test_hibp_breaches_are_stored_once_across_scans(run_worker, item, hibp_only, httpserver, mailoutbox):
    breach = {"Name": "Adobe", "Title": "Adobe", "BreachDate": "2013-10-04", "DataClasses": ["Passwords"]}
    httpserver.expect_request(ACCOUNT_PATH).respond_with_json([breach])
    assert scan(run_worker, item.watchlist.subscription_id).result["new_alerts"] == 1
    assert scan(run_worker, item.watchlist.subscription_id).result["new_alerts"] == 0
    assert Breach.objects.get().severity == "critical"


def test_an_unknown_subscription_fails_permanently(run_worker):
    run = scan(run_worker, 987654)
    assert run.status == JobRun.Status.FAILED
    assert "subscription 987654 does not exist" in run.error
