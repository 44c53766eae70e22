"""Provider concurrency and per-type rate limits (issue 19), each beside the plain way in the same run.

1. A DarkWatch scan of ITEMS email items against a local HIBP-style provider that answers
   after 50 ms and documents a limit of 20 concurrent requests: the scan with
   HIBP_CONCURRENCY=20 beside the sequential scan (concurrency 1, what the client did
   before), wall time and the most requests the provider saw in flight at once.
2. `rate_limit="100/s"` on `jobs.ping` (set through JOBS_LIMITS, as an operator would)
   over RUNS no-op runs and two `manage.py rqworker` processes (KordantSimpleWorker: the
   forking worker is slower than the limit here) plus `manage.py rqscheduler`: the most
   starts in any one-second window (from JobRun.started_at, sliding over every start),
   and how many runs did not complete. Beside it, the same
   runs with no limit through the same two workers.

Sizes: BENCH_LIMITS_ITEMS (default 1000) and BENCH_LIMITS_RUNS (default 5000).
"""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.job_core import ROOT

ITEMS = int(os.environ.get("BENCH_LIMITS_ITEMS", 1000))
RUNS = int(os.environ.get("BENCH_LIMITS_RUNS", 5000))
PROVIDER_DELAY = 0.05
PROVIDER_LIMIT = 20
RATE = 100


def _scan_side_by_side() -> None:
    from scanners.darkwatch.engine import watchlist_scan
    from scanners.darkwatch.models import Alert, Watchlist, WatchlistItem
    from scanners.darkwatch.providers import HIBPProvider
    from tests.factories import SubscriptionFactory
    from tests.provider_server import ProviderServer, hibp_answer

    subscription = SubscriptionFactory(tier="basic")
    watchlist = Watchlist.objects.create(subscription=subscription, name="Bench limits")
    items = []
    for n in range(ITEMS):
        item = WatchlistItem(watchlist=watchlist, kind="email")
        item.set_value(f"user{n}@example.net")
        items.append(item)
    WatchlistItem.objects.bulk_create(items)

    print(f"darkwatch.scan of {ITEMS:,} items, HIBP-style provider answering after {PROVIDER_DELAY * 1000:.0f} ms,")
    print(f"documented limit {PROVIDER_LIMIT} concurrent requests:")
    figures = {}
    with ProviderServer(hibp_answer, delay=PROVIDER_DELAY) as server:
        for label, concurrency in (("sequential (concurrency 1)", 1), (f"HIBP_CONCURRENCY={PROVIDER_LIMIT}", 20)):
            Alert.objects.filter(subscription=subscription).delete()
            server.reset_counts()
            with HIBPProvider(base_url=server.url, api_key="b", user_agent="b", concurrency=concurrency) as hibp:
                started = time.perf_counter()
                report = watchlist_scan(subscription.pk, [hibp])
                seconds = time.perf_counter() - started
            figures[concurrency] = (seconds, report.new_alerts)
            print(
                f"  {label:<28} {seconds:>7.2f} s   {ITEMS / seconds:>7,.0f} items/s"
                f"   max in flight {server.max_in_flight:>3} (limit {PROVIDER_LIMIT})"
                f"   {server.requests:,} requests   {report.new_alerts:,} alerts"
            )
            if server.max_in_flight > PROVIDER_LIMIT:
                print(f"  !! the provider saw {server.max_in_flight} requests at once, above its limit")
    (sequential, alerts_one), (overlapped, alerts_many) = figures[1], figures[20]
    same = "same alerts" if alerts_one == alerts_many else f"DIFFERENT alerts ({alerts_one} vs {alerts_many})"
    print(f"  speed-up {sequential / overlapped:.1f}x   ({same})")


def _processes(env: dict) -> list[subprocess.Popen]:
    command = [sys.executable, "manage.py"]
    env = {**os.environ, "LOG_LEVEL": "WARNING", **env}
    quiet = {"cwd": ROOT, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    # The non-forking worker class: a forking one starts fewer than 100 no-op runs a second
    # on this machine, and the limit would have nothing to hold back.
    worker = [*command, "rqworker", "default", "--worker-class", "jobs.worker.KordantSimpleWorker"]
    return [
        subprocess.Popen(worker, **quiet),
        subprocess.Popen(worker, **quiet),
        subprocess.Popen([*command, "rqscheduler"], **quiet),
    ]


def _max_per_window(times: list[int], window: int = 1_000_000) -> int:
    """The most start times (whole microseconds, as the database keeps them) in any [t, t + window)."""
    times = sorted(times)
    best, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


def _runs_through_two_workers(limits: dict) -> tuple[float, int, int, int]:
    """Enqueue RUNS pings, run them on two workers and a scheduler; (seconds, max starts/s, not completed, failed)."""
    from jobs.dispatch import redis_connection
    from jobs.models import JobEvent, JobRun
    from jobs.services import EnqueueRequest, enqueue_many

    redis_connection().flushdb()
    JobEvent.objects.all().delete()
    JobRun.objects.all().delete()
    enqueue_many([EnqueueRequest("jobs.ping", {"message": str(n)}) for n in range(RUNS)])
    # Only the benchmark's runs: the scheduler also enqueues the system jobs (jobs.monitor,
    # jobs.recover) on queues these workers do not serve, and they have no limit.
    pings = JobRun.objects.filter(job_type="jobs.ping")
    started = time.perf_counter()
    processes = _processes({"JOBS_LIMITS": json.dumps(limits)})
    deadline = started + max(120.0, 4 * RUNS / RATE)
    try:
        while time.perf_counter() < deadline:
            if not pings.exclude(status__in=("completed", "failed")).exists():
                break
            time.sleep(0.2)  # polling the database other processes write
        seconds = time.perf_counter() - started
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    epoch, micro = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)
    started = pings.exclude(started_at=None).values_list("started_at", flat=True)
    starts = [(at - epoch) // micro for at in started]
    not_completed = pings.exclude(status="completed").count()
    failed = pings.filter(status="failed").count()
    return seconds, _max_per_window(starts), not_completed, failed


def _rate_side_by_side() -> None:
    print(f'\n{RUNS:,} no-op runs (jobs.ping), two rqworker processes and rqscheduler; rate_limit="{RATE}/s":')
    for label, limits in (
        ("no limit", {}),
        (f'JOBS_LIMITS rate_limit="{RATE}/s"', {"jobs.ping": {"rate_limit": f"{RATE}/s"}}),
    ):
        seconds, peak, not_completed, failed = _runs_through_two_workers(limits)
        print(
            f"  {label:<30} {seconds:>7.1f} s   {RUNS / seconds:>6,.0f} runs/s"
            f"   most starts in any 1 s window: {peak:>4}   not completed: {not_completed}   failed: {failed}"
        )
        if limits and peak > RATE:
            print(f"  !! {peak} starts in one second, above the limit of {RATE}")


def main() -> None:
    _scan_side_by_side()
    _rate_side_by_side()
