"""The load forecast (jobs/forecast.py) over 300,000 schedules, against the per-row computation.

300,000 Schedule rows, bulk inserted: the default tier table (3 tiers, spread crons from
hourly to monthly) over subscriptions in ten zones, DST and half-hour ones among them,
plus periodic jobs' rows (every minute, every five, daily, spread). Then the forecast for
7 days: wall and CPU time, best of three (target < 2 s), peak Python memory (tracemalloc) beside what one loaded
Schedule instance per row would take, and the plain way in the same run: next_run_after
per row from the window's start until past its end (jobs.forecast.forecast_brute_force, what
the firing computes), timed over a sample and extrapolated, with the ratio. The sample is
also forecast the fast way and must agree to the run.

Size knob: BENCH_FORECAST_SCHEDULES (default 300000), BENCH_FORECAST_SAMPLE (default 3000).
"""

import os
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime

SCHEDULES = int(os.environ.get("BENCH_FORECAST_SCHEDULES", "300000"))
SAMPLE = int(os.environ.get("BENCH_FORECAST_SAMPLE", "3000"))
PERIODIC = max(10, SCHEDULES // 1000)
ROUNDS = 3
ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
]
PERIODIC_CRONS = ["* * * * *", "*/5 * * * *", "*/10 * * * *", "17 3 * * *", "0 */6 * * *", "30 9 * * 1-5"]


def _populate() -> int:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from jobs.bulk import bulk_insert_values
    from jobs.models import PeriodicJob, Schedule, SchedulerConfig
    from jobs.scheduling import _desired_cron
    from kordant.models import Subscription

    configs: dict[str, list[SchedulerConfig]] = {}
    for config in SchedulerConfig.objects.all():
        configs.setdefault(config.tier, []).append(config)
    tiers = sorted(configs)
    per_round = sum(len(configs[tier]) for tier in tiers)  # schedules for one subscription of each tier
    subscriptions = (SCHEDULES - PERIODIC) * len(tiers) // per_round
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"fc{i}") for i in range(subscriptions)], batch_size=5000)
    # bulk_create sends no signals: the rows below are the only schedules.
    subs = Subscription.objects.bulk_create(
        [
            Subscription(user=user, tier=tiers[i % len(tiers)], timezone=ZONES[i % len(ZONES)])
            for i, user in enumerate(users)
        ],
        batch_size=5000,
    )
    now = timezone.now()
    columns = ["subscription_id", "config_id", "cron_expression", "timezone", "enabled", "next_run_at"]
    columns += ["run_count", "last_status", "created_at", "updated_at"]
    rows = [
        (sub.pk, config.pk, _desired_cron(config, sub.pk), sub.timezone, True, now, 0, "", now, now)
        for sub in subs
        for config in configs[sub.tier]
    ]
    for start in range(0, len(rows), 20_000):
        bulk_insert_values(Schedule, columns, rows[start : start + 20_000], returning=False)
    jobs = PeriodicJob.objects.bulk_create(
        [
            PeriodicJob(name=f"forecast-{i}", job_type="jobs.prune", cron_expression=PERIODIC_CRONS[i % 6])
            for i in range(PERIODIC)
        ]
    )
    Schedule.objects.bulk_create(
        [
            Schedule(periodic_job=job, cron_expression=job.cron_expression, timezone=ZONES[i % 3], next_run_at=now)
            for i, job in enumerate(jobs)
        ]
    )
    return Schedule.objects.count()


def main() -> None:
    from jobs.forecast import active_schedules, forecast_brute_force, forecast_from_groups, schedule_forecast
    from jobs.models import Schedule

    started = time.perf_counter()
    total = _populate()
    print(f"populated {total} schedules in {time.perf_counter() - started:.1f} s", flush=True)
    start = datetime.now(UTC)

    schedule_forecast(start=start, hours=24)  # warm the connection and the cron caches, as a serving process is
    # Best of three, wall and CPU time (this process's: on SQLite that includes the database's
    # work, on PostgreSQL not); tracemalloc slows every allocation, so memory is a run of its own.
    timings = []
    for _ in range(ROUNDS):
        wall, cpu = time.perf_counter(), time.process_time()
        forecast = schedule_forecast(start=start)
        timings.append((time.perf_counter() - wall, time.process_time() - cpu))
    elapsed, cpu_elapsed = min(wall for wall, _ in timings), min(cpu for _, cpu in timings)
    tracemalloc.start()
    schedule_forecast(start=start)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()
    sample_objects = list(Schedule.objects.select_related("config", "periodic_job")[:SAMPLE])
    _, object_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    loaded = object_peak / len(sample_objects) * total
    del sample_objects
    print(
        f"forecast 7 days, {forecast.schedules} active schedules (best of {ROUNDS}): {elapsed:.2f} s wall, "
        f"{cpu_elapsed:.2f} s CPU (target < 2 s); {forecast.total} runs, peak {forecast.peak[1]} at "
        f"{forecast.peak[0]:%Y-%m-%d %H:00} UTC; peak Python memory {peak / 2**20:.1f} MiB "
        f"(loading every row as a Schedule: ~{loaded / 2**20:.0f} MiB)",
        flush=True,
    )

    # The plain way: each row through next_run_after, over a spread sample (every n-th row).
    step = max(1, total // SAMPLE)
    rows = list(
        active_schedules()
        .order_by("pk")
        .values_list("cron_expression", "timezone", "config__job_type", "periodic_job__job_type")
    )[::step][:SAMPLE]
    rows = [(cron, tz, tier_type or periodic_type) for cron, tz, tier_type, periodic_type in rows]
    began, cpu = time.perf_counter(), time.process_time()
    brute = forecast_brute_force(rows, start=start, hours=168)
    brute_elapsed, brute_cpu = time.perf_counter() - began, time.process_time() - cpu
    fast = forecast_from_groups(Counter(rows), start=start, hours=168)
    same = {k: v for k, v in fast.per_type.items() if any(v)} == {k: v for k, v in brute.items() if any(v)}
    extrapolated = brute_elapsed / len(rows) * forecast.schedules
    extrapolated_cpu = brute_cpu / len(rows) * forecast.schedules
    print(
        f"per-row next_run_after: {brute_elapsed:.2f} s wall ({brute_cpu:.2f} s CPU) for {len(rows)} rows, "
        f"~{extrapolated:.0f} s for {forecast.schedules} (extrapolated)   ratio {extrapolated / elapsed:.0f}x wall, "
        f"{extrapolated_cpu / cpu_elapsed:.0f}x CPU   sample counts agree: {'yes' if same else 'NO'}",
        flush=True,
    )
    if not same:
        raise RuntimeError("the forecast and the per-row count disagree on the sample")
