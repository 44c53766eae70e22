"""Periodic jobs against django-celery-beat doing the same work, in the same run.

The same 100,000 periodic jobs, every minute and all due: Kordant's scheduler pass fires them
(a JobRun each, pushed to Redis), against django-celery-beat's DatabaseScheduler ticking and
sending due entries to the same Redis as broker. Beat runs in its own process (its app in
INSTALLED_APPS, its packages from var/bench-peers, never in .venv) for BEAT_SECONDS; the figure
each side gives is dispatches per second. Set BENCH_PERIODIC_JOBS to try another size.
"""

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from jobs.registry import Payload, job_type

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "var" / "bench-peers"
JOBS = int(os.environ.get("BENCH_PERIODIC_JOBS", 100_000))
BEAT_SECONDS = float(os.environ.get("BENCH_BEAT_SECONDS", 30))


class _NoPayload(Payload):
    pass


@job_type("bench.periodic_noop", payload=_NoPayload)
def _noop(ctx, payload):
    """Benchmark stand-in: the scheduler's work is the same for any type."""
    return {}


def _ours(connection, n: int) -> float:
    """Seconds for KordantScheduler to fire n due periodic jobs (rows and entries made in bulk)."""
    from django.utils import timezone

    from jobs import entries
    from jobs.models import JobRun, PeriodicJob, Schedule
    from jobs.scheduler import KordantScheduler

    connection.flushdb()
    now = timezone.now()
    due = now - timedelta(seconds=5)
    jobs = PeriodicJob.objects.bulk_create(
        [
            PeriodicJob(name=f"beat-{i}", job_type="bench.periodic_noop", payload={}, cron_expression="* * * * *")
            for i in range(n)
        ],
        batch_size=5000,
    )
    schedules = Schedule.objects.bulk_create(
        [Schedule(periodic_job=job, cron_expression="* * * * *", timezone="UTC", next_run_at=due) for job in jobs],
        batch_size=5000,
    )
    for start in range(0, n, 10_000):
        entries.entries_write({s.pk: due for s in schedules[start : start + 10_000]})
    scheduler = KordantScheduler(connection=connection)
    assert scheduler.acquire_lock()
    started = time.perf_counter()
    scheduler.fire_due()
    elapsed = time.perf_counter() - started
    scheduler.remove_lock()
    # A pass that crosses a minute fires the jobs it reaches after it for the newest tick due
    # (catch-up "one"), and may fire the next tick of some it fired before: new ticks, never
    # one tick twice (a unique constraint). Every due job must have fired.
    fired = JobRun.objects.filter(trigger="cron", job_type="bench.periodic_noop").values("schedule").distinct().count()
    if fired != n:
        raise RuntimeError(f"{n} due periodic jobs, {fired} fired")
    return elapsed


def _install_peers() -> None:
    marker = PEERS / ".installed"
    wanted = (ROOT / "requirements-bench.txt").read_text()
    if marker.exists() and marker.read_text() == wanted:
        return
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--upgrade", "--target", str(PEERS), "-r", str(ROOT / "requirements-bench.txt")],
        check=True,
    )  # fmt: skip
    marker.write_text(wanted)


def _beat(n: int) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.celery_settings",
        "PYTHONPATH": os.pathsep.join([str(PEERS), str(ROOT)]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.celery_beat_child", str(n), str(BEAT_SECONDS)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"django-celery-beat side failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from jobs.dispatch import redis_connection

    connection = redis_connection()
    _install_peers()
    seconds = _ours(connection, JOBS)
    ours = JOBS / seconds
    print(f"Kordant: {JOBS:,} due periodic jobs fired in one pass: {seconds:.2f} s = {ours:,.0f} runs/s")
    connection.flushdb()
    beat = _beat(JOBS)
    print(
        f"django-celery-beat DatabaseScheduler, {beat['tasks']:,} tasks: loaded in {beat['load_seconds']:.1f} s, "
        f"then {beat['sent']:,} sends in {beat['seconds']:.0f} s of tick() = {beat['sends_per_second']:.2f} sends/s "
        f"({beat['queued']:,} messages in the broker)"
    )
    print(f"ratio: {ours / beat['sends_per_second']:,.0f}x  (goal: above 100x)")
