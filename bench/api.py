"""The REST API under gunicorn (2 workers) on loopback, loaded by wrk from a separate process.

1. Job detail (GET /api/v1/jobs/<id>/, a run with 6 events) beside a minimal DRF endpoint
   with the same token authentication, permission and throttle, in the same run: requests/s,
   p50 and p99 latency, and the ratio (target >= 0.6x). A bare DRF endpoint (no auth at
   all) and the conditional GET (If-None-Match, 304) are printed for context.
2. The list (GET /api/v1/jobs/?page_size=25, staff: count + page) with 100,000 runs in the
   table, unfiltered and filtered by status.

Load: wrk (Debian package `wrk`: `apt-get install -y wrk`), one thread, 4 connections,
127.0.0.1 only, WRK_SECONDS (default 3) per measurement after a 1 s warm-up. The two
endpoints of the ratio are measured in turn, five rounds each, and the best round of
each is kept: on a shared two-core machine the load of others moves every figure. Database
connections are kept between requests (DATABASE_CONN_MAX_AGE=60, as production would
set), on both sides; throttle rates are raised so that no request is throttled, but
every request still pays for its throttle check in Redis.
"""

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta

from bench.__main__ import ROOT
from kordant.embedded_redis import free_port

RUNS = 100_000
SECONDS = float(os.environ.get("WRK_SECONDS", "3"))
CONNECTIONS = 4
ROUNDS = 5
TARGET_RATIO = 0.6


def _seed() -> tuple[str, str]:
    """100,000 runs (mixed types, statuses, a month of creation times) and one run with events; a staff token."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from api.services import api_token_issue
    from jobs.bulk import bulk_insert
    from jobs.models import JobEvent, JobRun
    from jobs.operators import OPERATORS_GROUP

    JobEvent.objects.all().delete()
    JobRun.objects.all().delete()
    staff, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    # An operator: staff see other people's runs through the view permission, as in the admin.
    staff.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    token = api_token_issue(staff)
    rng = random.Random(7)
    now = timezone.now()
    types = ["darkwatch.scan", "hometitle.scan", "reports.generate", "notifications.send", "jobs.ping"]
    statuses = ["completed"] * 8 + ["failed", "queued", "running", "cancelled"]
    for _batch in range(RUNS // 10_000):
        batch = []
        for _ in range(10_000):
            created = now - timedelta(seconds=rng.randrange(30 * 86400))
            status = rng.choice(statuses)
            finished = status in ("completed", "failed", "cancelled")
            batch.append(
                JobRun(
                    job_type=rng.choice(types),
                    payload={"subscription_id": rng.randrange(1, 50_000)},
                    status=status,
                    queue="default",
                    trigger=rng.choice(["cron", "cron", "cron", "api", "event"]),
                    timeout=600,
                    max_attempts=4,
                    attempt=1,
                    progress=100 if finished else 40,
                    result={"found": rng.randrange(5)} if status == "completed" else None,
                    error="ProviderUnavailable: upstream answered 503" if status == "failed" else "",
                    created_at=created,
                    enqueued_at=created,
                    started_at=created + timedelta(seconds=1),
                    finished_at=created + timedelta(seconds=rng.uniform(1, 60)) if finished else None,
                    updated_at=created,
                )
            )
        bulk_insert(JobRun, batch)
    run = JobRun.objects.filter(status="completed").order_by("created_at").first()
    JobEvent.objects.bulk_create(
        JobEvent(job_run=run, at=run.created_at + timedelta(seconds=i), status=status, attempt=1, message=message)
        for i, (status, message) in enumerate(
            [
                ("pending", "enqueued (cron)"),
                ("queued", "queued"),
                ("running", ""),
                ("retrying", "retry in 60 s: ProviderUnavailable"),
                ("running", ""),
                ("completed", ""),
            ]
        )
    )
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # What autovacuum does soon after a bulk load in production: statistics and the
            # visibility map (which lets COUNT(*) read an index only).
            cursor.execute("VACUUM ANALYZE jobs_jobrun")
            cursor.execute("VACUUM ANALYZE jobs_jobevent")
    return token, str(run.pk)


def _gunicorn(port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.api_settings",
        "DATABASE_CONN_MAX_AGE": "60",
        "API_THROTTLE_USER": "100000000/minute",
        "API_THROTTLE_ANON": "100000000/minute",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "kordant.wsgi:application",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/bare/", timeout=1).read()
            return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("gunicorn exited at start") from None
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError("gunicorn did not answer within 30 s")


_LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(url: str, token: str, seconds: float, headers: tuple[str, ...] = ()) -> dict:
    """Load one URL for `seconds` (bounded: wrk stops by itself); requests/s, p50/p99 ms, non-2xx/3xx count."""
    args = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", "--latency", "--timeout", "5s"]
    for header in (f"Authorization: Token {token}", *headers):
        args += ["-H", header]
    output = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    latency = {int(pct): float(value) * _UNITS[unit] for pct, value, unit in _LATENCY.findall(output)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency[50],
        "p99": latency[99],
        "errors": int(errors.group(1)) if errors else 0,
    }


def _measure(base: str, path: str, token: str, headers: tuple[str, ...] = ()) -> dict:
    _wrk(base + path, token, 1, headers)  # warm-up: both workers' connections and caches
    result = _wrk(base + path, token, SECONDS, headers)
    if result["errors"]:
        raise RuntimeError(f"{path}: {result['errors']} responses were not 2xx/3xx")
    return result


def _best_of_rounds(base: str, token: str, paths: list[str]) -> list[dict]:
    """Each path measured ROUNDS times, in turn (a, b, a, b, ...); the round with the most requests/s of each."""
    rounds = [[_measure(base, path, token) for path in paths] for _ in range(ROUNDS)]
    return [max((round_[index] for round_ in rounds), key=lambda result: result["rps"]) for index in range(len(paths))]


def _line(label: str, result: dict) -> str:
    return f"   {label:44} {result['rps']:7.0f} req/s   p50 {result['p50']:6.2f} ms   p99 {result['p99']:6.2f} ms"


def main() -> None:
    if shutil.which("wrk") is None:
        print("   SKIPPED: wrk is not installed (Debian: apt-get install -y wrk)", flush=True)
        return
    started = time.perf_counter()
    token, run_id = _seed()
    print(f"   seeded {RUNS:,} runs in {time.perf_counter() - started:.1f} s", flush=True)
    port = free_port()
    server = _gunicorn(port)
    base = f"http://127.0.0.1:{port}"
    try:
        etag = urllib.request.urlopen(
            urllib.request.Request(f"{base}/api/v1/jobs/{run_id}/", headers={"Authorization": f"Token {token}"})
        ).headers["ETag"]
        minimal, detail = _best_of_rounds(base, token, ["/bench/minimal/", f"/api/v1/jobs/{run_id}/"])
        print(
            f"gunicorn 2 workers, wrk 1 thread x {CONNECTIONS} connections, {SECONDS:.0f} s each "
            f"(ratio pair: best of {ROUNDS} alternating rounds):",
            flush=True,
        )
        print(_line("minimal DRF endpoint (token auth, throttle)", minimal), flush=True)
        print(_line("job detail /api/v1/jobs/<id>/ (6 events)", detail), flush=True)
        print(f"   job detail / minimal: {detail['rps'] / minimal['rps']:.2f}x (target >= {TARGET_RATIO}x)", flush=True)
        print(_line("bare DRF endpoint (no auth), context", _measure(base, "/bench/bare/", token)), flush=True)
        print(
            _line(
                "job detail, If-None-Match (304)",
                _measure(base, f"/api/v1/jobs/{run_id}/", token, (f"If-None-Match: {etag}",)),
            ),
            flush=True,
        )
        listed = _measure(base, "/api/v1/jobs/?page_size=25", token)
        print(_line(f"list, {RUNS:,} runs, page of 25", listed), flush=True)
        filtered = _measure(base, "/api/v1/jobs/?status=failed&page_size=25", token)
        print(_line(f"list, {RUNS:,} runs, ?status=failed", filtered), flush=True)
        print(f"   list / minimal: {listed['rps'] / minimal['rps']:.2f}x", flush=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
