import datetime as dt

import pytest
from django.core.files.storage import default_storage

from notifications.models import Notification
from reports.errors import ReportPeriodInvalid
from reports.models import Report
from reports.services import report_generate, report_request
from tests.reports.conftest import PERIOD, add_alerts, add_title_changes, pdf_text

pytestmark = pytest.mark.django_db


def stored_files(media):
    return sorted(p.relative_to(media).as_posix() for p in media.rglob("*") if p.is_file()) if media.exists() else []


def test_pdf_names_the_subscriber_the_period_and_a_known_breach(subscription, media):
    add_alerts(subscription, 12, breach_name="MegaCorp2026")
    add_title_changes(subscription, 3)

    report = report_generate(subscription.pk, "monthly", *PERIOD)

    with default_storage.open(report.file.name) as handle:
        content = handle.read()
    pages, text = pdf_text(content)
    assert "Ada Lovelace" in text
    assert "1 Oct 2026" in text and "31 Oct 2026" in text
    assert "MegaCorp2026" in text
    assert "Mallory Fraudster" in text
    assert "Page 1 of" in text
    assert report.status == Report.Status.READY
    assert (report.page_count, report.size_bytes) == (pages, len(content))
    assert report.file.name == f"reports/{subscription.pk}/monthly/2026-10-01_2026-10-31-{report.checksum[:16]}.pdf"


def test_page_count_grows_sensibly_from_no_alerts_to_500(subscription, media, db):
    from tests.factories import SubscriptionFactory

    empty = report_generate(subscription.pk, "monthly", *PERIOD)
    busy_sub = SubscriptionFactory()
    add_alerts(busy_sub, 500)
    busy = report_generate(busy_sub.pk, "monthly", *PERIOD)

    # Cover, summary, DarkWatch, other products; no appendix when nothing was found.
    assert empty.page_count == 4
    # 500 appendix rows at ~45 a page, plus the front matter.
    assert 12 <= busy.page_count <= 25
    with default_storage.open(busy.file.name) as handle:
        pages, text = pdf_text(handle.read())
    assert f"Page {pages} of {pages}" in text
    assert text.count("MegaCorp2026") >= 100


def test_a_period_with_nothing_in_it_says_nothing_was_found(subscription, media):
    add_alerts(subscription, 5, start=dt.datetime(2026, 9, 3, tzinfo=dt.UTC))  # September, before the period

    report = report_generate(subscription.pk, "monthly", *PERIOD)

    with default_storage.open(report.file.name) as handle:
        _, text = pdf_text(handle.read())
    assert "nothing found in this period" in text
    assert "Nothing found: none of your watched identifiers" in text
    assert "No data: no properties are watched" in text
    # The September alerts count as the previous period, not as this one.
    assert "DarkWatch: new exposures 0 5 -5" in text


def test_regenerating_keeps_one_row_and_one_file(subscription, media, django_capture_on_commit_callbacks):
    add_alerts(subscription, 3)
    first = report_generate(subscription.pk, "monthly", *PERIOD)
    add_alerts(subscription, 4, breach_name="LaterLeak")

    # The old file goes once the row points at the new one, i.e. when that transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        second = report_generate(subscription.pk, "monthly", *PERIOD)

    assert Report.objects.count() == 1 and second.pk == first.pk
    assert second.checksum != first.checksum
    assert stored_files(media) == [second.file.name]
    with default_storage.open(second.file.name) as handle:
        assert "LaterLeak" in pdf_text(handle.read())[1]


def test_success_notifies_the_subscriber_once_with_an_absolute_download_link(
    subscription, media, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        report_generate(subscription.pk, "weekly", dt.date(2026, 10, 5), dt.date(2026, 10, 11))
    notes = Notification.objects.filter(kind="reports.ready", recipient=subscription.user)
    assert notes.exists()
    (url,) = {n.context["download_url"] for n in notes}
    assert url.startswith("https://app.kordant.test/reports/link/")  # signed: tests/reports/test_links.py
    assert {n.context["period_start"] for n in notes} == {"2026-10-05"}


def test_request_refuses_a_backwards_period_and_queues_nothing(subscription):
    from jobs.models import JobRun

    with pytest.raises(ReportPeriodInvalid, match="before it starts"):
        report_request(subscription, "on_demand", dt.date(2026, 10, 31), dt.date(2026, 10, 1))
    with pytest.raises(ReportPeriodInvalid, match="unknown report kind"):
        report_request(subscription, "yearly", *PERIOD)
    assert not JobRun.objects.exists()


def test_asking_twice_while_queued_returns_the_same_run(subscription):
    first = report_request(subscription, "on_demand", *PERIOD)
    second = report_request(subscription, "on_demand", *PERIOD)
    assert first.pk == second.pk
    assert first.payload == {
        "subscription_id": subscription.pk,
        "kind": "on_demand",
        "period_start": "2026-10-01",
        "period_end": "2026-10-31",
    }


@pytest.mark.parametrize(("size", "points"), [("A4", (595, 842)), ("Letter", (612, 792))])
def test_pages_are_the_configured_paper_size(subscription, media, settings, size, points):
    import io

    from pypdf import PdfReader

    settings.REPORTS_PAGE_SIZE = size
    report = report_generate(subscription.pk, "monthly", *PERIOD)
    with default_storage.open(report.file.name) as handle:
        box = PdfReader(io.BytesIO(handle.read())).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == points
