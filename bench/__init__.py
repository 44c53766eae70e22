"""Benchmarks: `make bench` runs every module listed in BENCHMARKS and prints its figures.

Each benchmark module exposes `main()`; it measures Kordant's code beside the
plain library doing the same work in the same run and prints figures and ratios.
Run one with `make bench BENCH_ARGS=<name>`. `bench/__main__.py` gives every run a
private Redis and database.
"""

BENCHMARKS = [
    "job_core",
    "scheduling",
    "celery_beat",
    "failover",
    "scanners",
    "webhooks",
    "webhook_signatures",
    "notifications",
    "fanout",
    "events",
    "voiceprint",
    "removebrokers",
    "limits",
    "reports",
    "admin",
    "api",
    "pool",
    "forecast",
]
