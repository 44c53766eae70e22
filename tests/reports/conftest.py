import datetime as dt
import io

import pytest
from pypdf import PdfReader

from scanners.darkwatch.models import Alert, Watchlist
from scanners.hometitle.models import RecordedDocument, TitleChange
from tests.factories import SubscriptionFactory, UserFactory
from tests.scanners.factories import BreachFactory, PropertyFactory, WatchlistItemFactory

PERIOD = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
SEVERITIES = ("critical", "high", "medium", "low")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Reports land in a private MEDIA_ROOT per test, through Django's real FileSystemStorage."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = "https://app.kordant.test"
    return settings.MEDIA_ROOT


@pytest.fixture
def subscription(db):
    user = UserFactory(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    return SubscriptionFactory(user=user, timezone="America/New_York")


def add_alerts(subscription, count, *, breach_name="MegaCorp2026", start=dt.datetime(2026, 10, 2, 15, tzinfo=dt.UTC)):
    """`count` alerts spread across October, one watched item each, in one named breach plus a few others."""
    watchlist = Watchlist.objects.get_or_create(subscription=subscription, name="Personal")[0]
    breaches = [BreachFactory(name=breach_name, title=breach_name)] + [BreachFactory() for _ in range(4)]
    items = [WatchlistItemFactory(watchlist=watchlist) for _ in range(count)]
    Alert.objects.bulk_create(
        Alert(
            subscription=subscription,
            item=item,
            breach=breaches[index % len(breaches)],
            severity=SEVERITIES[index % len(SEVERITIES)],
            first_seen=start + dt.timedelta(hours=(index * 7) % (27 * 24)),
        )
        for index, item in enumerate(items)
    )


def add_title_changes(subscription, count, *, detected=dt.datetime(2026, 10, 5, 12, tzinfo=dt.UTC)):
    prop = PropertyFactory(subscription=subscription)
    docs = RecordedDocument.objects.bulk_create(
        RecordedDocument(
            county="sangamon",
            document_number=f"2026-{subscription.pk}-{n:05d}",
            parcel_number=prop.parcel_number,
            parcel_key=prop.parcel_key,
            document_type="quitclaim_deed",
            recorded_date=dt.date(2026, 10, 3),
            grantee="Mallory Fraudster",
            source="test",
        )
        for n in range(count)
    )
    TitleChange.objects.bulk_create(
        TitleChange(property=prop, document=doc, severity="high", detected_at=detected) for doc in docs
    )


def pdf_text(content: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(content))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)
