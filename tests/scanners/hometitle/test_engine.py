import io
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scanners.hometitle.engine import properties_scan
from scanners.hometitle.models import RecordedDocument, TitleChange
from scanners.hometitle.providers import RecorderProvider
from scanners.hometitle.services import recordings_import
from tests.scanners.factories import PropertyFactory

pytestmark = pytest.mark.django_db

ADDED = datetime(2026, 5, 1, 12, tzinfo=UTC)
RECORDINGS = """county,document_number,parcel_number,document_type,recorded_date,grantor,grantee,amount
sangamon,2015-000123,14-000001,WARRANTY DEED,2015-03-02,Old Owner,Jane Q Doe,250000
sangamon,2026-004001,14-000001,QUITCLAIM DEED,2026-04-20,Jane Q Doe,Richard Roe,10
sangamon,2026-004002,14 000001,MECHANICS LIEN,2026-04-25,Roofing Co,Jane Doe,"12,500.00"
sangamon,2026-004003,14-000001,RELEASE OF LIEN,2026-04-28,Roofing Co,Jane Doe,
sangamon,2026-004004,14-999999,WARRANTY DEED,2026-04-20,X,Y,1
menard,2026-004001,14-000001,WARRANTY DEED,2026-04-20,X,Y,1
sangamon,2026-004005,14-000001,DEED,2026-13-01,X,Y,1
sangamon,2026-004006,14-000001,DEED,2026-04-01,X,Y,lots
"""


@pytest.fixture
def recordings():
    report = recordings_import(io.StringIO(RECORDINGS), "csv")
    assert report.added == 6
    assert [line for line, _ in report.rejected] == [8, 9]


@pytest.fixture
def watched():
    with time_machine.travel(ADDED, tick=False):
        return PropertyFactory(county="sangamon", parcel_number="14-000001")


def scan(prop):
    with time_machine.travel(ADDED, tick=False):
        return properties_scan(prop.subscription_id, [RecorderProvider()])


def test_a_scan_raises_a_change_per_new_document_with_its_severity(recordings, watched):
    report = scan(watched)
    changes = {(c.document.document_number, c.severity) for c in TitleChange.objects.select_related("document")}
    # The 2015 purchase is older than the first scan's look-back; other parcels and counties are not ours.
    assert changes == {("2026-004001", "critical"), ("2026-004002", "high"), ("2026-004003", "info")}
    assert report.as_dict() == {"properties": 1, "documents": 3, "new_changes": 3, "highest_severity": "critical"}


def test_scanning_again_changes_nothing_and_a_late_document_is_still_caught(recordings, watched):
    scan(watched)
    assert scan(watched).new_changes == 0
    # Recorded before the last scan, published after it: inside the look-back, so found.
    recordings_import(
        io.StringIO(
            "county,document_number,parcel_number,document_type,recorded_date\n"
            "sangamon,2026-004100,14-000001,MORTGAGE,2026-04-30\n"
        ),
        "csv",
    )
    assert scan(watched).new_changes == 1
    assert TitleChange.objects.count() == 4


def test_reimporting_recordings_adds_nothing(recordings):
    report = recordings_import(io.StringIO(RECORDINGS), "csv")
    assert (report.added, report.duplicates) == (0, 6)
    assert RecordedDocument.objects.count() == 6
    assert str(RecordedDocument.objects.get(document_number="2026-004002").amount) == "12500.00"


def test_queries_per_batch_do_not_grow_with_batch_size(recordings):
    first = PropertyFactory(county="sangamon", parcel_number="14-000001")
    for _ in range(30):
        PropertyFactory(subscription=first.subscription)

    def queries(batch_size):
        TitleChange.objects.all().delete()
        with CaptureQueriesContext(connection) as captured:
            properties_scan(first.subscription_id, [RecorderProvider()], batch_size=batch_size)
        return len(captured)

    small, large = queries(5), queries(31)  # 7 batches against 1
    assert (small - large) / 6 <= 6
    assert large <= 10
