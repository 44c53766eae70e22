"""Reports: one PDF with 500 exposures and 100 title changes, beside WeasyPrint alone; then 100 through a worker.

1. One report, the way the handler makes it (compile from the database, render the
   template, WeasyPrint, store, notify), in a forked child so its peak RSS is its own:
   cold (the first report a worker makes: fonts load) and warm (the next one).
   Beside it, in the same kind of child, plain WeasyPrint turning the same HTML into a
   PDF with nothing else: the difference is our overhead. Targets: < 1.5 s, < 300 MB.
2. Throughput: 100 subscriptions (20 exposures each) ask for a report; one
   `manage.py rqworker low --burst` (the production forking worker) makes them all.
"""

import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test import override_settings

from kordant.models import Subscription
from reports.models import Report
from scanners.darkwatch.models import Alert, Breach, Watchlist, WatchlistItem
from scanners.hometitle.models import Property, RecordedDocument, TitleChange

ROOT = Path(__file__).resolve().parents[1]
PERIOD = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
SUBSCRIPTIONS = int(os.environ.get("BENCH_REPORTS_SUBSCRIPTIONS", 100))
SEVERITIES = ("critical", "high", "medium", "low")


def main() -> None:
    media = tempfile.mkdtemp(prefix="kordant-bench-media-")
    with override_settings(MEDIA_ROOT=media):
        subscription = _subscription_with(alerts=500, title_changes=100, n=0)
        print(f"   one report: 500 exposures, 100 title changes, {connection.vendor}")
        _one_report(subscription)
        _throughput(media)


def _one_report(subscription) -> None:
    from reports.rendering import report_context, report_html
    from reports.selectors import report_data
    from reports.services import report_generate

    def ours():
        cold = _timed(lambda: report_generate(subscription.pk, "monthly", *PERIOD))
        warm = _timed(lambda: report_generate(subscription.pk, "monthly", *PERIOD))
        return f"{cold[0]:.3f} {warm[0]:.3f} {warm[1]:.3f}"

    report = Report(subscription=subscription, kind="monthly", period_start=PERIOD[0], period_end=PERIOD[1])
    html = report_html(
        report_context(subscriber="Bench", report=report, data=report_data(subscription, *PERIOD), timezone="UTC")
    )

    def plain():
        from weasyprint import HTML

        cold = _timed(lambda: HTML(string=html).write_pdf())
        warm = _timed(lambda: HTML(string=html).write_pdf())
        return f"{cold[0]:.3f} {warm[0]:.3f} {warm[1]:.3f}"

    # CPU seconds beside wall seconds: on a busy two-core machine the wall clock also counts
    # the time other processes held the core, the CPU figure only this report's own work.
    (cold, warm, warm_cpu), rss = _in_child(ours)
    pages = Report.objects.get(subscription=subscription).page_count
    print(
        f"   Kordant report_generate: cold {cold:.2f} s, warm {warm:.2f} s ({warm_cpu:.2f} s CPU), "
        f"peak RSS {rss:.0f} MB, {pages} pages  (target < 1.5 s, < 300 MB)"
    )
    (plain_cold, plain_warm, plain_cpu), plain_rss = _in_child(plain)
    print(
        f"   plain WeasyPrint HTML(...).write_pdf(), same HTML: cold {plain_cold:.2f} s, warm {plain_warm:.2f} s "
        f"({plain_cpu:.2f} s CPU), peak RSS {plain_rss:.0f} MB  "
        f"(report_generate takes {warm_cpu / plain_cpu:.2f}x its CPU time, warm)"
    )


def _throughput(media: str) -> None:
    from reports.services import report_request

    subscriptions = [_subscription_with(alerts=20, title_changes=0, n=n) for n in range(1, SUBSCRIPTIONS + 1)]
    for subscription in subscriptions:
        report_request(subscription, "monthly", *PERIOD)
    connections.close_all()
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "manage.py", "rqworker", "low", "--burst"],
        cwd=ROOT,
        env={**os.environ, "MEDIA_ROOT": media, "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        check=True,
    )
    elapsed = time.perf_counter() - started
    ready = Report.objects.filter(subscription__in=subscriptions, status="ready").count()
    print(
        f"   {SUBSCRIPTIONS} subscriptions x 20 exposures, one forking burst worker: {ready} reports ready in "
        f"{elapsed:.1f} s = {ready / elapsed * 60:.0f} reports/minute"
    )


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) that `fn` took."""
    started, started_cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - started, time.process_time() - started_cpu


def _in_child(fn) -> tuple[tuple[float, ...], float]:
    """Run `fn` in a forked child; return the seconds it prints and the child's peak RSS in MB."""
    connections.close_all()  # the child opens its own
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.write(write, fn().encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        output = pipe.read()
    _, status, usage = os.wait4(pid, 0)
    if status != 0 or not output:
        raise RuntimeError(f"benchmark child failed (status {status})")
    return tuple(float(part) for part in output.split()), usage.ru_maxrss / 1024  # Linux reports kilobytes


def _subscription_with(*, alerts: int, title_changes: int, n: int) -> Subscription:
    user = get_user_model().objects.create(username=f"bench-report-{n}", first_name="Bench", last_name=f"User {n}")
    subscription = Subscription.objects.create(user=user, tier="premium")
    watchlist = Watchlist.objects.create(subscription=subscription)
    breaches = [Breach.objects.get_or_create(source="bench", name=f"BenchBreach{b}")[0] for b in range(10)]
    items = []
    for index in range(alerts):
        item = WatchlistItem(watchlist=watchlist, kind="email")
        item.set_value(f"person{n}-{index}@example.com")
        items.append(item)
    WatchlistItem.objects.bulk_create(items)
    start = dt.datetime(2026, 10, 1, 8, tzinfo=dt.UTC)
    Alert.objects.bulk_create(
        Alert(
            subscription=subscription,
            item=item,
            breach=breaches[index % len(breaches)],
            severity=SEVERITIES[index % 4],
            first_seen=start + dt.timedelta(hours=index % 700),
        )
        for index, item in enumerate(items)
    )
    if title_changes:
        prop = Property(subscription=subscription, address="1 Bench Road", county="bench", parcel_number="1-1")
        prop.save()
        docs = RecordedDocument.objects.bulk_create(
            RecordedDocument(
                county="bench",
                document_number=f"B-{n}-{d}",
                parcel_number=prop.parcel_number,
                parcel_key=prop.parcel_key,
                document_type="deed",
                recorded_date=dt.date(2026, 10, 2),
                grantee="Bench Grantee",
                source="bench",
            )
            for d in range(title_changes)
        )
        TitleChange.objects.bulk_create(
            TitleChange(property=prop, document=doc, severity="high", detected_at=start) for doc in docs
        )
    return subscription
