"""DarkWatch and HomeTitle at scale, beside the plain Django ORM doing the same work in the same run.

1. Import 1,000,000 breach records from a CSV file (`breaches_import`) vs `bulk_create`
   of the same parsed, hashed rows (first 200,000).
2. Scan 10,000 watched items against those 1,000,000 records, at three batch sizes
   (items/s, queries per batch and per 1,000 items) vs a per-item ORM loop (first 1,000 items).
3. Import 1,000,000 recorded documents, then scan 10,000 watched properties against them
   vs a per-property ORM loop (first 1,000 properties).
"""

import csv
import itertools
import random
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

RECORDS = 1_000_000
BREACHES = 200
ITEMS = 10_000
PLAIN_IMPORT = 200_000
PLAIN_ITEMS = 1_000
DOCUMENTS = 1_000_000
PARCELS = 200_000
PROPERTIES = 10_000
PLAIN_PROPERTIES = 1_000
DOC_TYPES = ["WARRANTY DEED", "QUITCLAIM DEED", "MORTGAGE", "MECHANICS LIEN", "RELEASE OF LIEN", "EASEMENT"]


def _breach_file(directory: Path) -> Path:
    path = directory / "breaches.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["breach", "breach_date", "data_classes", "kind", "identifier"])
        # Each account once per breach, as a dump lists it, but one line in 500 repeated.
        previous = None
        for n in range(RECORDS):
            if n % 500 == 499:
                writer.writerow(previous)
                continue
            breach = n % BREACHES
            previous = [
                f"Breach{breach}",
                f"20{10 + breach % 15}-0{1 + breach % 9}-15",
                "Email addresses|Passwords",
                "email",
                # n -> a scattered account number, distinct for every n (the multiplier is odd and not a multiple of 5).
                f"user{n * 2654435761 % (RECORDS * 2)}@example.com",
            ]
            writer.writerow(previous)
    return path


def _vacuum() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def _import_breaches(path: Path) -> None:
    from scanners.darkwatch import identifiers
    from scanners.darkwatch.models import Breach, BreachRecord
    from scanners.darkwatch.services import breaches_import

    def timed_import() -> tuple[float, object]:
        with path.open(newline="") as stream:
            report = breaches_import(stream, "csv")
        return report.read / report.seconds, report

    # First, as a real first import meets it: an empty corpus in a fresh database.
    rate, report = timed_import()
    print(
        f"import_breaches: {report.read:,} lines in {report.seconds:.1f} s = {rate:,.0f} rows/s "
        f"({report.added:,} added, {report.duplicates:,} repeated lines; target >= 50,000 rows/s)"
    )
    again, report = timed_import()
    print(f"  the same file again: {again:,.0f} rows/s ({report.added} added)")

    # The plain way, into the emptied table: the same parsing and hashing, then
    # bulk_create(ignore_conflicts) per 10,000 rows, for the first PLAIN_IMPORT lines.
    BreachRecord.objects.all().delete()
    _vacuum()
    ids = dict(Breach.objects.values_list("name", "pk"))
    started = time.perf_counter()
    batch = []
    with path.open(newline="") as stream:
        for n, row in enumerate(csv.DictReader(stream)):
            if n == PLAIN_IMPORT:
                break
            value = identifiers.normalize(row["kind"], row["identifier"]).value
            batch.append(
                BreachRecord(
                    breach_id=ids[row["breach"]],
                    kind=row["kind"],
                    identifier_hash=identifiers.identifier_hash(row["kind"], value),
                )
            )
            if len(batch) == 10_000:
                BreachRecord.objects.bulk_create(batch, ignore_conflicts=True)
                batch = []
    BreachRecord.objects.bulk_create(batch, ignore_conflicts=True)
    plain = PLAIN_IMPORT / (time.perf_counter() - started)
    print(f"  plain bulk_create of the same rows: {plain:,.0f} rows/s   ratio {rate / plain:.1f}x")

    # Back to the full corpus for the scans, timed again: a first import into a table
    # that has seen a million deletes and a vacuum, and WAL from all of the above.
    BreachRecord.objects.all().delete()
    _vacuum()
    later, report = timed_import()
    print(f"  a first import again, into the emptied table: {later:,.0f} rows/s ({report.added:,} added)")


def _watch_items(subscription, path: Path) -> None:
    """10,000 items: one in twenty is in the corpus."""
    from scanners.darkwatch.models import Watchlist, WatchlistItem

    watchlist = Watchlist.objects.create(subscription=subscription, name="Bench")
    with path.open(newline="") as stream:
        reader = csv.DictReader(stream)
        breached = list(dict.fromkeys(row["identifier"] for row in itertools.islice(reader, ITEMS // 10)))
    items = []
    for n in range(ITEMS):
        item = WatchlistItem(watchlist=watchlist, kind="email")
        item.set_value(breached[n // 20] if n % 20 == 0 else f"clean{n}@example.net")
        items.append(item)
    WatchlistItem.objects.bulk_create(items)


def _scan_items(subscription) -> None:
    from scanners.darkwatch.engine import watchlist_scan
    from scanners.darkwatch.models import Alert, WatchlistItem
    from scanners.darkwatch.providers import CorpusProvider

    print(f"darkwatch.scan of {ITEMS:,} items against {RECORDS:,} records:")
    rates = {}
    for batch_size in (100, 500, 2000):
        Alert.objects.all().delete()
        _vacuum()
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            report = watchlist_scan(subscription.pk, [CorpusProvider()], batch_size=batch_size)
            seconds = time.perf_counter() - started
        batches = -(-ITEMS // batch_size)
        rates[batch_size] = ITEMS / seconds
        print(
            f"  batch {batch_size:>5}: {ITEMS / seconds:>8,.0f} items/s"
            f"   {len(captured) / batches:.1f} queries per batch"
            f"   {len(captured) * 1000 / ITEMS:.1f} per 1,000 items   ({report.new_alerts:,} alerts)"
        )
        reset_queries()
    # The plain way: per item, look the hash up and get_or_create each alert.
    from scanners.darkwatch.models import BreachRecord

    Alert.objects.all().delete()
    started = time.perf_counter()
    for item in WatchlistItem.objects.filter(watchlist__subscription=subscription).order_by("pk")[:PLAIN_ITEMS]:
        for record in BreachRecord.objects.filter(identifier_hash=item.value_hash).select_related("breach"):
            Alert.objects.get_or_create(
                item=item,
                breach=record.breach,
                defaults={
                    "subscription": subscription,
                    "severity": record.breach.severity,
                    "first_seen": item.created_at,
                },
            )
    plain = PLAIN_ITEMS / (time.perf_counter() - started)
    print(
        f"  plain per-item ORM loop: {plain:,.0f} items/s   ratio at batch 500: {rates[500] / plain:.1f}x"
        "  (target >= 5,000 items/s)"
    )


def _recordings_file(directory: Path) -> Path:
    from scanners.hometitle.services import RECORDING_COLUMNS

    rng = random.Random(11)
    path = directory / "recordings.csv"
    start = date(2020, 1, 1)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(RECORDING_COLUMNS)
        for n in range(DOCUMENTS):
            writer.writerow(
                [
                    "sangamon",
                    f"D{n:08d}",
                    f"14-{n % PARCELS:06d}",
                    rng.choice(DOC_TYPES),
                    (start + timedelta(days=rng.randrange(2500))).isoformat(),
                    "Seller Person",
                    "Buyer Person",
                    f"{rng.randrange(1000, 900000)}.00",
                ]
            )
    return path


def _hometitle(directory: Path, subscription) -> None:
    from django.utils import timezone

    from scanners.hometitle.engine import properties_scan
    from scanners.hometitle.models import Property, RecordedDocument, TitleChange
    from scanners.hometitle.providers import RecorderProvider
    from scanners.hometitle.services import recordings_import

    path = _recordings_file(directory)
    with path.open(newline="") as stream:
        report = recordings_import(stream, "csv")
    print(
        f"import_recordings: {report.read:,} lines in {report.seconds:.1f} s"
        f" = {report.read / report.seconds:,.0f} rows/s"
    )
    Property.objects.bulk_create(
        [
            Property(
                subscription=subscription,
                address=f"{n} Bench St",
                county="sangamon",
                parcel_number=f"14-{n * 7 % PARCELS:06d}",
                parcel_key=f"sangamon:14{n * 7 % PARCELS:06d}",
                owner_names="Buyer Person",
            )
            for n in range(PROPERTIES)
        ]
    )
    # Watched for a year, last scanned a month ago: each scan looks at about two months of documents.
    Property.objects.update(
        created_at=timezone.now() - timedelta(days=365), last_scanned_at=timezone.now() - timedelta(days=30)
    )
    _vacuum()
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        scan = properties_scan(subscription.pk, [RecorderProvider()], batch_size=500)
        seconds = time.perf_counter() - started
    print(
        f"hometitle.scan of {PROPERTIES:,} properties against {DOCUMENTS:,} documents:"
        f" {PROPERTIES / seconds:,.0f} properties/s"
        f"   {len(captured) / (PROPERTIES / 500):.1f} queries per batch of 500   ({scan.new_changes:,} title changes)"
    )
    from scanners.hometitle import documents

    TitleChange.objects.all().delete()
    started = time.perf_counter()
    since = (timezone.now() - timedelta(days=60)).date()
    for prop in Property.objects.filter(subscription=subscription).order_by("pk")[:PLAIN_PROPERTIES]:
        for doc in RecordedDocument.objects.filter(parcel_key=prop.parcel_key, recorded_date__gte=since):
            TitleChange.objects.get_or_create(
                property=prop,
                document=doc,
                defaults={
                    "severity": documents.severity(doc.document_type, doc.grantee, prop.owner_names),
                    "detected_at": timezone.now(),
                },
            )
    plain = PLAIN_PROPERTIES / (time.perf_counter() - started)
    print(f"  plain per-property ORM loop: {plain:,.0f} properties/s   ratio {PROPERTIES / seconds / plain:.1f}x")


def main() -> None:
    from tests.factories import SubscriptionFactory

    with tempfile.TemporaryDirectory(prefix="kordant-bench-scanners-") as directory:
        directory = Path(directory)
        path = _breach_file(directory)
        _import_breaches(path)
        _vacuum()
        subscription = SubscriptionFactory(tier="basic")
        _watch_items(subscription, path)
        _scan_items(subscription)
        _hometitle(directory, subscription)
