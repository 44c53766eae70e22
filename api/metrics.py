"""Prometheus metrics read from the database and Redis at scrape time.

No process-local counters: any web process answers for the whole system (gunicorn's
workers, several hosts), and the numbers survive restarts because they are the rows.
"""

from __future__ import annotations

import math

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from jobs import selectors as job_selectors

# Upper bounds (seconds) of the run-time histogram: sub-second pings up to hour-long scans.
DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600)


class JobSystemCollector:
    """Queue depths, runs by type and status, run times, failure ratios, the scheduler's heartbeat."""

    def collect(self):
        yield from self._runs()
        yield from self._redis()

    def describe(self):
        return []  # collected at scrape time only; nothing to read at registration

    def _runs(self):
        runs = GaugeMetricFamily(
            "kordant_job_runs", "Job runs in the database, by job type and status.", labels=["job_type", "status"]
        )
        for job_type, statuses in sorted(job_selectors.job_run_counts_by_type().items()):
            for status, count in sorted(statuses.items()):
                runs.add_metric([job_type, status], count)
        yield runs

        failures = GaugeMetricFamily(
            "kordant_job_failure_ratio",
            'Share of runs finished in the last hour that failed, per job type ("*": all).',
            labels=["job_type"],
        )
        for job_type, ratio in sorted(job_selectors.job_run_failure_rate().items()):
            failures.add_metric([job_type], ratio)
        yield failures

        durations = HistogramMetricFamily(
            "kordant_job_run_duration_seconds",
            "Run time of finished (completed or failed) runs kept in the database, per job type.",
            labels=["job_type"],
        )
        for job_type, histogram in sorted(job_selectors.job_run_duration_histogram(DURATION_BUCKETS).items()):
            buckets = [
                (floatToGoString(bound), count)
                for bound, count in zip(DURATION_BUCKETS, histogram["buckets"], strict=True)
            ]
            buckets.append(("+Inf", histogram["count"]))
            durations.add_metric([job_type], buckets, histogram["sum"])
        yield durations

        oldest = job_selectors.oldest_queued_age()
        yield GaugeMetricFamily(
            "kordant_oldest_queued_seconds",
            "How long the oldest due, queued run has waited (0 when none waits).",
            value=oldest.total_seconds() if oldest else 0.0,
        )

    def _redis(self):
        up = GaugeMetricFamily("kordant_redis_up", "1 if Redis answered this scrape.")
        try:
            depths = job_selectors.queue_depths()
            beat = job_selectors.scheduler_heartbeat()
        except (redis.RedisError, OSError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        queue = GaugeMetricFamily(
            "kordant_queue_depth",
            'Jobs waiting in each RQ queue; "delayed": waiting for a later time.',
            labels=["queue"],
        )
        for name, depth in depths.items():
            queue.add_metric([name], depth)
        yield queue
        yield GaugeMetricFamily(
            "kordant_scheduler_heartbeat_age_seconds",
            "Seconds since the scheduler's last heartbeat; +Inf when there is none (not running for 5 minutes).",
            value=beat["age_seconds"] if beat else math.inf,
        )


registry = CollectorRegistry(auto_describe=False)
registry.register(JobSystemCollector())


def metrics_text() -> bytes:
    """The metrics in Prometheus' text format (0.0.4)."""
    return generate_latest(registry)
