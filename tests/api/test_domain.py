import datetime as dt

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs.models import JobRun
from reports.models import Report
from scanners.darkwatch.models import Alert
from tests.api.conftest import error_of, queries_per_page_size
from tests.api.factories import (
    AlertFactory,
    AnalysisJobFactory,
    RemovalRequestFactory,
    ReportFactory,
    TitleChangeFactory,
)
from tests.factories import SubscriptionFactory
from tests.scanners.factories import PropertyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_subscriptions_are_the_users_own(api, alice, bob, staff):
    mine = alice.subscriptions.get()
    assert [row["id"] for row in api.as_user(alice).get("/api/v1/subscriptions/").json()["results"]] == [mine.pk]
    assert api.get(f"/api/v1/subscriptions/{bob.subscriptions.get().pk}/").status_code == 404
    assert api.as_user(staff).get("/api/v1/subscriptions/").json()["count"] == 2


def test_alerts_show_the_masked_identifier_only_and_only_to_their_owner(api, alice, bob):
    alert = AlertFactory(subscription=alice.subscriptions.get())
    theirs = AlertFactory(subscription=bob.subscriptions.get())
    client = api.as_user(alice)
    response = client.get("/api/v1/alerts/")
    rows = response.json()["results"]
    assert [row["id"] for row in rows] == [alert.pk]
    assert rows[0]["item"]["masked"] == alert.item.masked
    assert alert.item.value not in response.content.decode()  # the raw email never leaves
    assert rows[0]["breach"]["name"] == alert.breach.name
    assert client.get(f"/api/v1/alerts/{theirs.pk}/").status_code == 404
    assert client.post(f"/api/v1/alerts/{theirs.pk}/resolve/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "new"


def test_owner_acknowledges_then_resolves_an_alert(api, alice):
    alert = AlertFactory(subscription=alice.subscriptions.get())
    client = api.as_user(alice)
    assert client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/").json()["status"] == "acknowledged"
    assert client.post(f"/api/v1/alerts/{alert.pk}/resolve/").json()["status"] == "resolved"
    assert Alert.objects.get(pk=alert.pk).status == "resolved"
    assert client.get("/api/v1/alerts/?status=resolved").json()["count"] == 1
    assert client.get("/api/v1/alerts/?status=new").json()["count"] == 0


def test_title_changes_removal_requests_and_voice_analyses_are_scoped(api, alice, bob):
    mine = alice.subscriptions.get()
    change = TitleChangeFactory(property=PropertyFactory(subscription=mine))
    TitleChangeFactory(property=PropertyFactory(subscription=bob.subscriptions.get()))
    request = RemovalRequestFactory(subscription=mine, person={"full_name": "Alice Secret"})
    RemovalRequestFactory(subscription=bob.subscriptions.get())
    analysis = AnalysisJobFactory(subscription=mine)
    AnalysisJobFactory(subscription=bob.subscriptions.get())
    client = api.as_user(alice)

    changes = client.get("/api/v1/title-changes/").json()["results"]
    assert [row["id"] for row in changes] == [change.pk]
    assert changes[0]["document"]["document_type"] == "mortgage"
    assert client.post(f"/api/v1/title-changes/{change.pk}/acknowledge/").json()["status"] == "acknowledged"

    removal = client.get("/api/v1/removal-requests/")
    assert [row["id"] for row in removal.json()["results"]] == [request.pk]
    assert "Alice Secret" not in removal.content.decode()

    analyses = client.get("/api/v1/voice-analyses/").json()["results"]
    assert [row["id"] for row in analyses] == [analysis.pk]
    assert analyses[0]["sample"]["original_name"] == "call.wav"


LISTS = {
    "alerts": lambda sub: AlertFactory(subscription=sub),
    "title-changes": lambda sub: TitleChangeFactory(property=PropertyFactory(subscription=sub)),
    "removal-requests": lambda sub: RemovalRequestFactory(subscription=sub),
    "voice-analyses": lambda sub: AnalysisJobFactory(subscription=sub),
    "reports": lambda sub: ReportFactory(subscription=sub),
    "subscriptions": lambda sub: SubscriptionFactory(),
}


@pytest.mark.parametrize("name", sorted(LISTS))
def test_list_query_count_does_not_grow_with_page_size(api, staff, name):
    subscription = SubscriptionFactory()
    for _ in range(51):
        LISTS[name](subscription)
    counts = queries_per_page_size(api.as_user(staff), f"/api/v1/{name}/")
    assert counts[5] == counts[50] <= 5, counts  # the staff member's permissions are 2 of them


# --- reports -------------------------------------------------------------------------------


def ready_report(subscription) -> Report:
    report = ReportFactory(
        subscription=subscription,
        status=Report.Status.READY,
        period_start=dt.date(2026, 10, 1),
        period_end=dt.date(2026, 10, 31),
    )
    report.file.name = default_storage.save(f"reports/{subscription.pk}/r.pdf", ContentFile(b"%PDF-1.7 test report"))
    report.save()
    return report


def test_reports_are_the_owners_and_download_works_with_a_token(api, alice, bob):
    report = ready_report(alice.subscriptions.get())
    theirs = ready_report(bob.subscriptions.get())
    client = api.as_user(alice)

    rows = client.get("/api/v1/reports/").json()["results"]
    assert [row["id"] for row in rows] == [report.pk]
    assert rows[0]["download_url"] == f"http://testserver/api/v1/reports/{report.pk}/download/"

    download = client.get(rows[0]["download_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert b"".join(download.streaming_content) == b"%PDF-1.7 test report"
    assert "kordant-report-2026-10-01-2026-10-31.pdf" in download["Content-Disposition"]

    assert client.get(f"/api/v1/reports/{theirs.pk}/").status_code == 404
    refused = client.get(f"/api/v1/reports/{theirs.pk}/download/")
    assert refused.status_code == 404
    assert error_of(refused)["code"] == "not_found"
    api.credentials()
    assert api.get(rows[0]["download_url"]).status_code == 401


def test_a_report_not_ready_has_no_download(api, alice):
    report = ReportFactory(subscription=alice.subscriptions.get())
    client = api.as_user(alice)
    assert client.get(f"/api/v1/reports/{report.pk}/").json()["download_url"] is None
    assert client.get(f"/api/v1/reports/{report.pk}/download/").status_code == 404


def test_owner_requests_an_on_demand_report(api, alice, bob):
    client = api.as_user(alice)
    subscription = alice.subscriptions.get()
    response = client.post(
        "/api/v1/reports/",
        {"subscription": subscription.pk, "period_start": "2026-10-01", "period_end": "2026-10-15"},
        format="json",
    )
    assert response.status_code == 202, response.json()
    run = JobRun.objects.get()
    assert response["Location"] == f"/api/v1/jobs/{run.pk}/"
    assert (run.job_type, run.user, run.subscription) == ("reports.generate", alice, subscription)
    assert run.payload["kind"] == "on_demand"
    # The owner can follow the run.
    assert client.get(response["Location"]).status_code == 200

    others = client.post(
        "/api/v1/reports/",
        {"subscription": bob.subscriptions.get().pk, "period_start": "2026-10-01", "period_end": "2026-10-15"},
        format="json",
    )
    assert others.status_code == 400
    assert "subscription" in error_of(others)["fields"]

    backwards = client.post(
        "/api/v1/reports/",
        {"subscription": subscription.pk, "period_start": "2026-10-15", "period_end": "2026-10-01"},
        format="json",
    )
    assert backwards.status_code == 400
    assert "before it starts" in error_of(backwards)["message"]
    assert JobRun.objects.count() == 1
