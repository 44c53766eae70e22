import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scanners.darkwatch.engine import watchlist_scan
from scanners.darkwatch.models import Alert, WatchlistItem
from scanners.darkwatch.providers import CorpusProvider
from scanners.darkwatch.services import breaches_import
from tests.scanners.factories import WatchlistFactory, WatchlistItemFactory

pytestmark = pytest.mark.django_db

CORPUS = """breach,data_classes,kind,identifier
Adobe,Email addresses|Passwords,email,jane@example.com
Adobe,Email addresses|Passwords,email,other@example.com
Canva,Email addresses|Names,email,JANE@example.com
Canva,Email addresses|Names,phone,+14155550132
Forum,Usernames,username,darkknight
"""


@pytest.fixture
def corpus():
    breaches_import(io.StringIO(CORPUS), "csv")


@pytest.fixture
def watchlist():
    watchlist = WatchlistFactory()
    WatchlistItemFactory(watchlist=watchlist, kind="email", value="jane@example.com")
    WatchlistItemFactory(watchlist=watchlist, kind="phone", value="(415) 555-0132")
    WatchlistItemFactory(watchlist=watchlist, kind="username", value="clean_user")
    WatchlistItemFactory(watchlist=watchlist, kind="username", value="DarkKnight", active=False)
    return watchlist


def test_scan_finds_the_expected_breaches(corpus, watchlist):
    report = watchlist_scan(watchlist.subscription_id, [CorpusProvider()])
    alerts = {(alert.item.masked, alert.breach.name, alert.severity) for alert in Alert.objects.all()}
    assert alerts == {
        ("j***@example.com", "Adobe", "critical"),
        ("j***@example.com", "Canva", "medium"),
        ("+1******0132", "Canva", "medium"),
    }  # the inactive username is not scanned
    assert (report.items, report.new_alerts) == (3, 3)
    assert report.as_dict()["highest_severity"] == "critical"
    assert WatchlistItem.objects.filter(active=True, last_scanned_at__isnull=True).count() == 0


def test_scanning_twice_creates_nothing_new(corpus, watchlist):
    watchlist_scan(watchlist.subscription_id, [CorpusProvider()])
    again = watchlist_scan(watchlist.subscription_id, [CorpusProvider()])
    assert (again.found, again.new_alerts) == (3, 0)
    assert Alert.objects.count() == 3


def test_a_new_breach_of_an_already_alerted_item_is_one_new_alert(corpus, watchlist):
    watchlist_scan(watchlist.subscription_id, [CorpusProvider()])
    breaches_import(io.StringIO("breach,kind,identifier\nNewLeak,email,jane@example.com\n"), "csv")
    report = watchlist_scan(watchlist.subscription_id, [CorpusProvider()])
    assert report.new_alerts == 1
    assert Alert.objects.filter(breach__name="NewLeak").count() == 1


def test_queries_per_batch_do_not_grow_with_batch_size(corpus):
    watchlist = WatchlistFactory()
    for n in range(60):
        WatchlistItemFactory(watchlist=watchlist, value=f"user{n}@example.com")
    WatchlistItemFactory(watchlist=watchlist, value="jane@example.com")

    def queries(batch_size: int) -> int:
        Alert.objects.all().delete()
        with CaptureQueriesContext(connection) as captured:
            watchlist_scan(watchlist.subscription_id, [CorpusProvider()], batch_size=batch_size)
        return len(captured)

    small, large = queries(10), queries(61)  # 7 batches against 1
    per_batch = (small - large) / 6
    assert per_batch <= 7
    assert large <= 10


def test_progress_is_reported_per_batch(corpus, watchlist):
    seen = []
    watchlist_scan(watchlist.subscription_id, [CorpusProvider()], batch_size=2, progress=lambda p, m: seen.append(p))
    assert seen == [pytest.approx(200 / 3), 100.0]


def test_an_overlapped_hibp_scan_makes_the_same_alerts_as_the_sequential_one_and_is_idempotent():
    from scanners.darkwatch.providers import HIBPProvider
    from tests.provider_server import ProviderServer, hibp_answer

    def alerts(watchlist):
        return sorted(
            Alert.objects.filter(subscription_id=watchlist.subscription_id).values_list(
                "item__value_hash", "breach__name", "severity"
            )
        )

    sequential_list, overlapped_list = WatchlistFactory(), WatchlistFactory()
    for watchlist in (sequential_list, overlapped_list):
        for n in range(40):
            WatchlistItemFactory(watchlist=watchlist, kind="email", value=f"user{n}@example.com")
    with ProviderServer(hibp_answer, delay=0.005) as server:

        def scan(watchlist, concurrency):
            with HIBPProvider(base_url=server.url, api_key="k", user_agent="t", concurrency=concurrency) as hibp:
                return watchlist_scan(watchlist.subscription_id, [hibp], batch_size=15)

        sequential = scan(sequential_list, 1)
        overlapped = scan(overlapped_list, 8)
        again = scan(overlapped_list, 8)
    assert overlapped.as_dict() == sequential.as_dict() and sequential.new_alerts == 40
    assert alerts(overlapped_list) == alerts(sequential_list)
    assert again.new_alerts == 0 and again.found == overlapped.found
