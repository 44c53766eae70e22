"""The operator console on a big table: the JobRun changelist with 100,000 runs, the dashboard with 1,000,000.

Each page is rendered through Django's test client as a logged-in superuser (the full
admin stack: middleware, permissions, templates), best of five after a warm-up, with its
query count; and beside it, in the same run on the same rows:
- the changelist against the stock ModelAdmin for JobRun (no list_select_related, full
  result count, `__str__` only) on a second AdminSite, and a plain ORM page of 50 rows;
- the dashboard against a naive one: counts by status over the whole table, no time bound.
Query counts are taken at two table sizes: constant means the page does not grow with the data.

Rows are made by the database itself (INSERT ... SELECT over generate_series on
PostgreSQL, a recursive CTE on SQLite): a million runs spread over 30 days, 1 in 20
failed, a few hundred queued, no Python objects built.

Targets (PostgreSQL): each page under 300 ms, the same query count at both sizes.
"""

import time
from statistics import median

from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import override_settings
from django.urls import include, path

from jobs.models import JobRun

baseline_site = admin.AdminSite(name="baseline")
baseline_site.register(JobRun)  # the stock ModelAdmin
urlpatterns = [path("baseline/", baseline_site.urls), path("", include("kordant.urls"))]

DAYS = 30
PAGE_TARGET_MS = 300


def _insert_runs(start: int, stop: int) -> None:
    """Rows start..stop-1: created evenly over the last DAYS days, newest last."""
    n_total = 1_000_000
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""
                INSERT INTO jobs_jobrun (id, job_type, payload, status, queue, trigger, attempt, max_attempts,
                    timeout, progress, progress_message, error, error_type, traceback, cancel_reason, worker_name,
                    created_at, enqueued_at, started_at, finished_at, updated_at)
                SELECT gen_random_uuid(),
                    (ARRAY['darkwatch.scan', 'hometitle.scan', 'reports.generate', 'notifications.send',
                           'jobs.ping'])[1 + i %% 5],
                    jsonb_build_object('subscription_id', i), s.status,
                    (ARRAY['critical','high','default','low'])[1 + i %% 4], 'cron',
                    1, 4, 600, 100, '', CASE WHEN s.status = 'failed' THEN 'boom' ELSE '' END, '', '', '', 'w',
                    c.at, c.at, c.at, CASE WHEN s.status = 'queued' THEN NULL
                        ELSE c.at + (i %% 997) * interval '1 millisecond' END, c.at
                FROM generate_series(%s, %s - 1) AS i,
                    LATERAL (SELECT now() - interval '{DAYS} days' * (1 - i::float / {n_total}) AS at) c,
                    LATERAL (SELECT CASE WHEN i %% 20 = 0 THEN 'failed' WHEN i %% 4000 = 1 THEN 'queued'
                                         ELSE 'completed' END AS status) s
                """,
                [start, stop],
            )
        else:
            cursor.execute(
                f"""
                WITH RECURSIVE seq(i) AS (SELECT %s UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < %s)
                INSERT INTO jobs_jobrun (id, job_type, payload, status, queue, trigger, attempt, max_attempts,
                    timeout, progress, progress_message, error, error_type, traceback, cancel_reason, worker_name,
                    created_at, enqueued_at, started_at, finished_at, updated_at)
                SELECT lower(hex(randomblob(16))), 'jobs.ping', '{{}}',
                    CASE WHEN i %% 20 = 0 THEN 'failed' WHEN i %% 4000 = 1 THEN 'queued' ELSE 'completed' END,
                    'default', 'cron', 1, 4, 600, 100, '', '', '', '', '', 'w', at, at, at, at, at
                FROM (SELECT i, datetime('now', printf('-%%f seconds', {DAYS} * 86400.0 * (1 - i * 1.0 / {n_total})))
                      AS at FROM seq)
                """,
                [start, stop],
            )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE jobs_jobrun")


def _measure(client: Client, url: str) -> tuple[float, int]:
    """(best milliseconds of five after a warm-up, queries) for one page."""
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}")
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    # A wrapper, not CaptureQueriesContext: its log is cleared by each request's start signal.
    with connection.execute_wrapper(count):
        client.get(url)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    return min(times), len(queries)


def _plain_orm_page() -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        list(JobRun.objects.select_related("user").order_by("-created_at")[:50])
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def _naive_dashboard() -> float:
    from django.db.models import Count

    times = []
    for _ in range(3):
        started = time.perf_counter()
        dict(JobRun.objects.order_by().values_list("status").annotate(n=Count("pk")))
        times.append((time.perf_counter() - started) * 1000)
    return median(times)


def _verdict(ms: float) -> str:
    return "ok" if ms < PAGE_TARGET_MS else "MISSED"


def main() -> None:
    from django.contrib.auth import get_user_model

    _empty()
    user = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", "unused")
    client = Client()
    client.force_login(user)
    changelist, stock, dashboard = "/admin/jobs/jobrun/", "/baseline/jobs/jobrun/", "/admin/jobs/jobrun/dashboard/"

    with override_settings(ROOT_URLCONF="bench.admin"):
        _insert_runs(0, 1_000)
        _, changelist_q_small = _measure(client, changelist)
        _, dashboard_q_small = _measure(client, dashboard)

        started = time.perf_counter()
        _insert_runs(1_000, 100_000)
        print(f"inserted 100,000 runs in {time.perf_counter() - started:.1f} s", flush=True)
        ours, ours_q = _measure(client, changelist)
        base, base_q = _measure(client, stock)
        orm = _plain_orm_page()
        print(
            f"JobRun changelist, 100,000 runs: Kordant {ours:6.1f} ms ({ours_q} queries; {changelist_q_small} at "
            f"1,000 runs)   stock ModelAdmin {base:6.1f} ms ({base_q} queries)   plain ORM page of 50 {orm:5.1f} ms   "
            f"target < {PAGE_TARGET_MS} ms: {_verdict(ours)}",
            flush=True,
        )

        started = time.perf_counter()
        _insert_runs(100_000, 1_000_000)
        print(f"inserted up to 1,000,000 runs in {time.perf_counter() - started:.1f} s", flush=True)
        ours, ours_q = _measure(client, dashboard)
        naive = _naive_dashboard()
        print(
            f"dashboard, 1,000,000 runs: Kordant {ours:6.1f} ms ({ours_q} queries; {dashboard_q_small} at 1,000 runs)"
            f"   naive counts by status over the whole table {naive:6.1f} ms (1 query)   "
            f"target < {PAGE_TARGET_MS} ms: {_verdict(ours)}",
            flush=True,
        )
        ours, ours_q = _measure(client, changelist)
        base, base_q = _measure(client, stock)
        print(
            f"JobRun changelist, 1,000,000 runs: Kordant {ours:6.1f} ms ({ours_q} queries)   "
            f"stock ModelAdmin {base:6.1f} ms ({base_q} queries)",
            flush=True,
        )
    _empty()


def _empty() -> None:
    # Not QuerySet.delete(): it would load every run into memory to find its events.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM jobs_jobevent")
        cursor.execute("DELETE FROM jobs_jobrun")
