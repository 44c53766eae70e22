"""Tier scheduling against stock rq-scheduler doing the same work, in the same run.

1. Registering entries: `schedules_sync_all` for 100,000 subscriptions across tiers
   (Schedule rows and entries, from none) vs stock `Scheduler.cron()` per entry, best of
   three each; Redis bytes per entry.
2. A scheduler pass with 10,000 due schedules (JobRuns created and pushed) vs stock
   `enqueue_jobs()` with 10,000 due cron entries, best of three each.
3. 100,000 due in one burst: the lock must stay held, and no tick may run twice.
4. Saving one subscription (signal, schedules, entries): median latency.
5. Periodic jobs (issue 18) against tier schedules, in the same run: registering
   100,000 periodic jobs (rows, schedule rows and entries, `periodic_jobs_create_many`)
   per entry against the tier sync's per entry (target: at least as fast); a scheduler
   pass with 10,000 due periodic jobs against the same pass with 10,000 due tier
   schedules (target: within 1.2x). Each tier figure is measured again there, in rounds
   alternating with the periodic ones, so both sides of a ratio see the same machine load
   and database state.
(django-celery-beat with the same 100,000 periodic jobs: bench/celery_beat.py.)

Sizes (environment, for a quick run while developing): BENCH_SCHEDULING_SUBSCRIPTIONS,
BENCH_SCHEDULING_DUE, BENCH_SCHEDULING_BURST, BENCH_SCHEDULING_PERIODIC.
"""

import os
import statistics
import time
import warnings
from datetime import timedelta

from jobs.registry import Payload, job_type, subscription_schedule_payload

# rq-scheduler's crontab dependency warns on every cron() call; the figures matter here.
warnings.filterwarnings("ignore", category=FutureWarning, module="rq_scheduler")

SUBSCRIPTIONS = int(os.environ.get("BENCH_SCHEDULING_SUBSCRIPTIONS", 100_000))
STOCK_ENTRIES = 10_000
DUE = int(os.environ.get("BENCH_SCHEDULING_DUE", 10_000))
BURST = int(os.environ.get("BENCH_SCHEDULING_BURST", 100_000))
PERIODIC = int(os.environ.get("BENCH_SCHEDULING_PERIODIC", 100_000))
PERIODIC_CHUNK = 10_000  # jobs per periodic_jobs_create_many call (all or none each)
ROUNDS = 3


class _SubscriptionPayload(Payload):
    subscription_id: int


def _bench_scan(ctx, payload):
    """Benchmark stand-in for a scheduled product job: the scheduler's work is the same for any type."""
    return {}


# The product job types arrive with their own issues; until then the tier table's rows
# point at registered stand-ins, so every due tick is really queued and pushed.
_STAND_IN = "bench.scan"


def _use_stand_in_job_types() -> None:
    from jobs.models import SchedulerConfig

    for config in SchedulerConfig.objects.all():
        SchedulerConfig.objects.filter(pk=config.pk).update(job_type=f"{_STAND_IN}_{config.pk}")
    for config in SchedulerConfig.objects.all():
        # With a scheduled payload, as the product's scan types declare: without one every
        # tick fails (NotSchedulable) and the pass times failed rows, not queued and pushed runs.
        job_type(config.job_type, payload=_SubscriptionPayload, schedule_payload=subscription_schedule_payload)(
            _bench_scan
        )


def _memory(connection) -> int:
    return connection.info("memory")["used_memory"]


def _stock_scheduler(connection):
    from rq_scheduler import Scheduler

    from jobs.worker import JSONJob

    return Scheduler(connection=connection, job_class=JSONJob)


def _stock_register(connection, n: int) -> tuple[float, float]:
    """Stock cron() registrations per second, and Redis bytes per entry."""
    connection.flushdb()
    scheduler = _stock_scheduler(connection)
    before = _memory(connection)
    started = time.perf_counter()
    for i in range(n):
        scheduler.cron(f"{i % 60} * * * *", "jobs.scheduling.schedule_fire", args=[i], id=f"stock-{i}")
    elapsed = time.perf_counter() - started
    return n / elapsed, (_memory(connection) - before) / n


def _make_subscriptions(n: int) -> None:
    from django.contrib.auth import get_user_model

    from kordant.models import Subscription

    User = get_user_model()
    tiers = ["basic", "plus", "premium"]
    zones = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney"]
    users = User.objects.bulk_create([User(username=f"bench{i}") for i in range(n)], batch_size=5000)
    # bulk_create sends no signals: the sync below does all the schedule work.
    Subscription.objects.bulk_create(
        [Subscription(user=user, tier=tiers[i % 3], timezone=zones[i % 5]) for i, user in enumerate(users)],
        batch_size=5000,
    )


def _drop_schedules(connection) -> None:
    """Start a sync from nothing: no schedule rows, no entries (raw SQL: no per-row signals)."""
    from django.db import connection as database

    from jobs.models import Schedule

    connection.flushdb()
    with database.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Schedule._meta.db_table}")
    _vacuum()


def _vacuum() -> None:
    """Give PostgreSQL a steady state between rounds: the deletes leave dead rows and
    stale planner statistics that a production table would not carry."""
    from django.db import connection as database

    if database.vendor != "postgresql":
        return
    with database.cursor() as cursor:
        for table in ("jobs_schedule", "jobs_periodicjob", "jobs_jobrun", "jobs_jobevent", "kordant_subscription"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def _stock_pass(connection, n: int) -> float:
    """Seconds for one stock enqueue_jobs() with n due cron entries."""
    connection.flushdb()
    scheduler = _stock_scheduler(connection)
    for i in range(n):
        scheduler.cron("* * * * *", "jobs.scheduling.schedule_fire", args=[i], id=f"stock-{i}")
    connection.zadd(scheduler.scheduled_jobs_key, {f"stock-{i}": time.time() - 5 for i in range(n)})
    started = time.perf_counter()
    scheduler.enqueue_jobs()
    elapsed = time.perf_counter() - started
    assert connection.llen("rq:queue:default") == n
    return elapsed


def _make_due(connection, n: int, *, periodic: bool = False) -> list[int]:
    """Make n schedules (tier ones, or periodic jobs') due a few seconds ago, rows and entries."""
    from django.utils import timezone

    from jobs import entries
    from jobs.models import JobEvent, JobRun, Schedule

    JobEvent.objects.all().delete()
    JobRun.objects.all().delete()
    connection.flushdb()
    kind = Schedule.objects.filter(periodic_job__isnull=not periodic)
    if periodic:
        kind = kind.filter(periodic_job__builtin=False)
    pks = list(kind.order_by("pk").values_list("pk", flat=True)[:n])
    due = timezone.now() - timedelta(seconds=5)
    Schedule.objects.filter(pk__in=pks).update(next_run_at=due, last_run=None)
    _vacuum()
    for start in range(0, n, 10_000):
        entries.entries_write({pk: due for pk in pks[start : start + 10_000]})
    return pks


def _our_pass(connection, n: int, *, periodic: bool = False) -> tuple[float, bool]:
    """Seconds for KordantScheduler to fire n due schedules (tier ones, or periodic jobs') under
    its lock; whether it still held the lock."""
    from django.db.models import Count

    from jobs.models import JobRun
    from jobs.scheduler import KordantScheduler

    _make_due(connection, n, periodic=periodic)
    scheduler = KordantScheduler(connection=connection)
    assert scheduler.acquire_lock()
    started = time.perf_counter()
    report = scheduler.fire_due()
    elapsed = time.perf_counter() - started
    held = connection.get(scheduler.scheduler_lock_key) is not None
    scheduler.remove_lock()
    cron_runs = JobRun.objects.filter(trigger="cron")
    schedules = cron_runs.values("schedule").distinct().count()
    duplicates = cron_runs.values("schedule", "planned_for").annotate(n=Count("pk")).filter(n__gt=1).count()
    # A long burst may also fire the next tick of an hourly schedule that came due
    # meanwhile: a new tick, not a duplicate. Every due schedule must have fired once,
    # and fired means queued and pushed: a pass of failed ticks is no measure of one.
    if schedules != n or duplicates or report.queued < n:
        raise RuntimeError(f"{n} due: runs for {schedules} schedules ({report}); {duplicates} duplicate ticks")
    return elapsed, held


_PERIODIC_TYPE = "bench.periodic"


def _drop_periodic_jobs() -> None:
    """No periodic jobs but the built-in ones: rows gone by raw SQL (no per-row signals);
    runs first, since they point at the schedules."""
    from django.db import connection as database

    from jobs.models import JobEvent, JobRun, PeriodicJob, Schedule

    JobEvent.objects.all().delete()
    JobRun.objects.all().delete()
    jobs, schedules = PeriodicJob._meta.db_table, Schedule._meta.db_table
    with database.cursor() as cursor:
        cursor.execute(f"DELETE FROM {schedules} WHERE periodic_job_id IN (SELECT id FROM {jobs} WHERE NOT builtin)")
        cursor.execute(f"DELETE FROM {jobs} WHERE NOT builtin")
    _vacuum()


def _periodic_register(connection, n: int) -> tuple[float, int]:
    """Seconds to register n periodic jobs (validated rows, schedule rows, entries after commit)
    with periodic_jobs_create_many, a chunk at a time; and the entries it wrote."""
    from jobs import entries
    from jobs.periodic import periodic_jobs_create_many

    zones = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney"]
    _drop_periodic_jobs()
    before = entries.entry_count(connection=connection)
    # Each its own payload, as customers' jobs have; timing spread hourly by the job's id.
    batch = [
        {
            "name": f"bench periodic {i}",
            "job_type": _PERIODIC_TYPE,
            "payload": {"subscription_id": i},
            "frequency": "hourly",
            "timezone": zones[i % 5],
        }
        for i in range(n)
    ]
    started = time.perf_counter()
    for start in range(0, n, PERIODIC_CHUNK):
        periodic_jobs_create_many(batch[start : start + PERIODIC_CHUNK])
    elapsed = time.perf_counter() - started
    return elapsed, entries.entry_count(connection=connection) - before


def _tier_register(connection) -> float:
    """Seconds per entry for schedules_sync_all to build every tier schedule and entry from none."""
    from jobs.models import Schedule
    from jobs.scheduling import schedules_sync_all

    _drop_periodic_jobs()
    _drop_schedules(connection)
    started = time.perf_counter()
    schedules_sync_all()
    return (time.perf_counter() - started) / Schedule.objects.count()


def _periodic(connection, tier_per_entry: float, tier_pass: float) -> None:
    job_type(_PERIODIC_TYPE, payload=_SubscriptionPayload)(_bench_scan)
    # The tier registration measured again here, alternately with the periodic one, as the
    # passes below: the same minute on a shared machine and the same database state.
    rounds, tier_rounds = [], []
    for _ in range(ROUNDS):
        tier_rounds.append(_tier_register(connection))
        rounds.append(_periodic_register(connection, PERIODIC))
    elapsed, written = min(rounds)
    if written != PERIODIC:
        raise RuntimeError(f"{PERIODIC} periodic jobs registered, {written} entries written")
    per_entry, tier_now = elapsed / PERIODIC, min(tier_rounds)
    print(
        f"register periodic jobs (best of {ROUNDS}): {PERIODIC} in {elapsed:.1f} s, "
        f"{per_entry * 1e6:.0f} us per entry (validated row, schedule row, entry)   "
        f"tier schedules (schedules_sync_all), measured alternately {tier_now * 1e6:.0f} us per entry "
        f"(earlier in this run {tier_per_entry * 1e6:.0f} us)   "
        f"ratio {tier_now / per_entry:.2f}x (target >= 1x)",
        flush=True,
    )
    due = min(DUE, PERIODIC)
    # The tier pass measured again here, alternately with the periodic one: the same database
    # state (the burst above left 100,000 runs' dead rows and index pages behind) and the same
    # minute on a shared machine. The figure from minutes earlier is shown beside it.
    periodic_passes, tier_passes = [], []
    for _ in range(ROUNDS):
        tier_passes.append(_our_pass(connection, due)[0])
        periodic_passes.append(_our_pass(connection, due, periodic=True)[0])
    ours, tier_now = min(periodic_passes), min(tier_passes)
    print(
        f"scheduler pass, {due} due periodic jobs (best of {ROUNDS}): {ours:.2f} s   "
        f"same pass with {due} due tier schedules, measured alternately {tier_now:.2f} s "
        f"(earlier in this run {tier_pass:.2f} s)   "
        f"periodic/tier {ours / tier_now:.2f}x (target <= 1.2x)",
        flush=True,
    )


def _save_latency(samples: int = 200) -> tuple[float, float]:
    """Median ms to save a subscription through commit: a plain save, and a tier change."""
    from django.db import transaction

    from kordant.models import Subscription

    subscription = Subscription.objects.filter(tier="plus").first()
    plain, tier_change = [], []
    for i in range(samples):
        started = time.perf_counter()
        with transaction.atomic():
            subscription.save()
        plain.append(time.perf_counter() - started)
        subscription.tier = "premium" if i % 2 == 0 else "plus"
        started = time.perf_counter()
        with transaction.atomic():
            subscription.save()
        tier_change.append(time.perf_counter() - started)
    return statistics.median(plain) * 1000, statistics.median(tier_change) * 1000


def main() -> None:
    from jobs.dispatch import redis_connection
    from jobs.models import Schedule
    from jobs.scheduling import schedules_sync_all

    connection = redis_connection()
    # Best of three for each side, as timeit does: each measurement is a few seconds,
    # long enough for a busy two-core machine to slow one of them by a third.
    stock = [_stock_register(connection, STOCK_ENTRIES) for _ in range(ROUNDS)]
    stock_rate, stock_bytes = max(rate for rate, _ in stock), stock[0][1]

    _use_stand_in_job_types()
    _make_subscriptions(SUBSCRIPTIONS)
    timings = []
    for _ in range(ROUNDS):
        _drop_schedules(connection)
        before = _memory(connection)
        started = time.perf_counter()
        report = schedules_sync_all()
        timings.append(time.perf_counter() - started)
        total = Schedule.objects.count()
        assert report.entries_written == total, report
        our_bytes = (_memory(connection) - before) / total
    elapsed = min(timings)
    our_rate = total / elapsed
    print(
        f"register entries (best of {ROUNDS}): stock cron() {stock_rate:7.0f}/s ({STOCK_ENTRIES} entries)   "
        f"schedules_sync_all {our_rate:7.0f}/s ({SUBSCRIPTIONS} subscriptions, {total} schedules "
        f"in {elapsed:.1f} s)   ratio {our_rate / stock_rate:.1f}x (target >= 10x)",
        flush=True,
    )
    print(
        f"redis per entry: stock {stock_bytes:.0f} B   Kordant {our_bytes:.0f} B (target <= 700 B)",
        flush=True,
    )

    stock = min(_stock_pass(connection, DUE) for _ in range(ROUNDS))
    ours = min(_our_pass(connection, DUE)[0] for _ in range(ROUNDS))
    print(
        f"scheduler pass, {DUE} due (best of {ROUNDS}): stock enqueue_jobs() {stock:.2f} s   "
        f"KordantScheduler {ours:.2f} s (runs created and pushed)   {stock / ours:.1f}x faster (target >= 4x)",
        flush=True,
    )

    burst = min(BURST, total)
    seconds, held = _our_pass(connection, burst)
    print(
        f"burst of {burst} due: {seconds:.1f} s, lock {'held throughout' if held else 'LOST'}, no duplicate runs",
        flush=True,
    )

    _periodic(connection, elapsed / total, ours)

    plain, tier_change = _save_latency()
    print(
        f"save one subscription through commit: median {plain:.1f} ms plain, {tier_change:.1f} ms changing tier "
        f"(target < 10 ms)",
        flush=True,
    )
