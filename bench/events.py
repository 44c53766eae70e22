"""What job events cost on the hot path: a run's completion with and without webhook event subscribers.

The same `job_run_mark_completed` (the one-statement transition on PostgreSQL) on N running
runs, four ways in one run:

1. the `run_transitioned` receiver disconnected: the transition as it was before job events;
2. connected, no endpoint subscribed to job events (the usual case): one in-memory check;
3. a staff endpoint subscribed, but to another job type: one read of the run per completion;
4. a staff endpoint subscribed to `job.completed`: one event (a notification and its send job)
   per completion.

Size: BENCH_EVENTS_RUNS (default 2000) runs per way.
"""

import os
import time

RUNS = int(os.environ.get("BENCH_EVENTS_RUNS", "2000"))


def _running_runs(n: int) -> list:
    from jobs.models import JobRun
    from jobs.services import EnqueueRequest, enqueue_many

    runs = enqueue_many([EnqueueRequest("jobs.ping", {"message": "bench"}) for _ in range(n)])
    JobRun.objects.filter(pk__in=[run.pk for run in runs]).update(status="running", attempt=1)
    for run in runs:
        run.status, run.attempt = "running", 1
    return runs


def _complete_all(runs) -> float:
    from jobs.services import job_run_mark_completed

    started = time.perf_counter()
    for run in runs:
        job_run_mark_completed(run, {"ok": True}, "bench")
    return (time.perf_counter() - started) / len(runs) * 1e6


def _reset() -> None:
    from jobs.dispatch import redis_connection
    from jobs.models import JobEvent, JobRun
    from notifications.events import event_subscribers_forget
    from notifications.models import Notification, WebhookEndpoint

    redis_connection().flushdb()
    Notification.objects.all().delete()
    WebhookEndpoint.objects.all().delete()
    JobEvent.objects.all().delete()
    JobRun.objects.all().delete()
    event_subscribers_forget()


def _way(name: str, staff) -> float:
    from jobs.hooks import run_transitioned
    from notifications.models import WebhookEndpoint
    from notifications.signals import job_event

    _reset()
    if name == "no receiver (before job events)":
        run_transitioned.disconnect(dispatch_uid="notifications.run_transitioned")
        try:
            return _complete_all(_running_runs(RUNS))
        finally:
            run_transitioned.connect(job_event, dispatch_uid="notifications.run_transitioned")
    if name == "subscribed to another job type":
        WebhookEndpoint.objects.create(
            owner=staff, url="http://127.0.0.1:9/", kinds=["job.*"], job_types=["darkwatch.scan"]
        )
    elif name == "subscribed: one event per run":
        WebhookEndpoint.objects.create(owner=staff, url="http://127.0.0.1:9/", kinds=["job.completed"])
    return _complete_all(_running_runs(RUNS))


WAYS = (
    "no receiver (before job events)",
    "receiver, nobody subscribed",
    "subscribed to another job type",
    "subscribed: one event per run",
)


def main() -> None:
    from django.contrib.auth import get_user_model

    staff, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    figures: dict[str, float] = {}
    # Twice, in turn, keeping each way's best: a shared machine's noise moves whole rounds.
    for _ in range(2):
        for name in WAYS:
            figures[name] = min(figures.get(name, float("inf")), _way(name, staff))
    _reset()

    base = figures[WAYS[0]]
    print(f"   {RUNS} completions per way, best of 2 rounds")
    for name, micros in figures.items():
        print(f"   {name:<36} {micros:9.1f} µs per completion   ×{micros / base:.2f}")
