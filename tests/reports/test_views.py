import pytest
from django.core.files.storage import default_storage

from reports.services import report_generate
from tests.factories import OperatorFactory, UserFactory
from tests.reports.conftest import PERIOD

pytestmark = pytest.mark.django_db


@pytest.fixture
def report(subscription, media):
    return report_generate(subscription.pk, "monthly", *PERIOD)


def url(report):
    return f"/reports/{report.pk}/download/"


def test_the_owner_downloads_the_pdf(client, report, subscription):
    client.force_login(subscription.user)
    response = client.get(url(report))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert 'filename="kordant-report-2026-10-01-2026-10-31.pdf"' in response["Content-Disposition"]
    with default_storage.open(report.file.name) as handle:
        assert b"".join(response.streaming_content) == handle.read()


def test_operators_download_any_report_and_staff_without_the_view_permission_do_not(client, report):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(url(report)).status_code == 404  # as in the admin, which refuses them the reports
    client.force_login(OperatorFactory())
    assert client.get(url(report)).status_code == 200


@pytest.mark.parametrize("who", ["anonymous", "another customer"])
def test_anyone_else_is_refused_as_if_the_report_did_not_exist(client, report, who):
    if who == "another customer":
        client.force_login(UserFactory())
    response = client.get(url(report))
    assert response.status_code == 404
    assert response.get("Content-Type") != "application/pdf"


def test_admin_lists_the_report_with_a_download_link_and_regenerates_it(client, report):
    from jobs.models import JobRun

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    listing = client.get("/admin/reports/report/")
    assert listing.status_code == 200
    assert url(report) in listing.content.decode()

    response = client.post(
        "/admin/reports/report/", {"action": "regenerate", "_selected_action": [report.pk]}, follow=True
    )
    assert "Queued 1 report(s) for regeneration." in response.content.decode()
    run = JobRun.objects.get(job_type="reports.generate")
    assert run.payload["period_start"] == "2026-10-01" and run.trigger == "manual"


def test_the_report_page_has_one_pdf_link_and_it_downloads(client, report):
    """Issue 17.7: the page also linked the file under /media/, which nothing serves (404)."""
    import re

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(f"/admin/reports/report/{report.pk}/change/").content.decode()
    pdf_links = [
        href
        for href in re.findall(r'href="([^"]+)"', page)
        if "report" in href and href.endswith(("/download/", ".pdf"))
    ]
    assert pdf_links == [url(report)]
    assert "/media/" not in page and 'type="file"' not in page
    assert client.get(pdf_links[0]).status_code == 200
