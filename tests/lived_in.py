"""A lived-in database: what `make run`'s demo looks like after it has been running a while.

The demo data (subscribers of every tier, scanners' corpus, brokers, reports) made by the
same services `make run` calls, then its schedules fired, the runs worked by a burst worker,
and the states a quiet test database never has: failed, retrying, retried, cancelled and
skipped runs, periodic jobs (built in, an operator's, a customer's) that have fired, failed
and skipped a missed tick, and a built-in one an operator disabled, alerts and title changes,
ready reports, notifications, webhook deliveries and job and resource events,
removal requests that went to the (local) brokers. Pages are tested on this, not on empty tables.
"""

from __future__ import annotations

import importlib
import threading
from datetime import timedelta

from django.utils import timezone

from jobs import enqueue
from jobs.models import JobRun, Schedule
from tests.factories import UserFactory


def broker_stub():
    """The demo brokers' stub on a free port, in a thread: (url, server)."""
    from scanners.removebrokers.stub import make_server

    server = make_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def lived_in_build(tmp_path, run_worker, settings) -> dict:
    """Build the lived-in state (see the module docstring); return a few of its rows by role."""
    from api.services import api_token_issue
    from jobs.demo import demo_data_ensure
    from jobs.entrypoints import quarantine_record
    from jobs.models import PeriodicJob
    from jobs.periodic import periodic_job_create, periodic_job_set_enabled
    from jobs.scheduling import schedules_fire, schedules_record_outcomes
    from jobs.services import job_run_cancel, job_run_retry
    from notifications.models import NotificationPreference, WebhookEndpoint
    from reports.demo import report_demo_ensure
    from scanners.demo import scanners_demo_ensure
    from scanners.removebrokers.demo import removebrokers_demo_ensure
    from scanners.voiceprint.models import AnalysisJob, VoiceProfile, VoiceSample

    settings.MEDIA_ROOT = tmp_path / "media"
    url, server = broker_stub()
    settings.REMOVEBROKERS_DEMO_URL = url
    try:
        demo_data_ensure()
        premium = UserFactory._meta.model.objects.get(username="demo-premium")
        # A webhook the stub refuses (it knows no /hooks/ endpoint): failed deliveries, as in real life.
        WebhookEndpoint.objects.create(owner=premium, url=f"{url}/hooks/optout")
        # Job and resource events (notifications/events.py), refused the same way: the delivery log
        # shows events, their requests as sent and the refusals.
        WebhookEndpoint.objects.create(
            owner=premium, url=f"{url}/hooks/events", kinds=["alert.*", "report.*", "removal_request.*", "job.*"]
        )
        ops = UserFactory(username="lived-in-ops", is_staff=True)
        WebhookEndpoint.objects.create(owner=ops, url=f"{url}/hooks/jobs", kinds=["job.failed", "job.cancelled"])
        api_token_issue(premium)  # the API's tokens (stored hashed)
        # A job refused from Redis, as the dashboard lists them (jobs.entrypoints).
        quarantine_record("hostile-job", "worker", "function 'os.system' is not a registered entry point")
        NotificationPreference.objects.get_or_create(user=premium, channel="sms", defaults={"address": "+15555550100"})
        scanners_demo_ensure(tmp_path / "demo")
        removebrokers_demo_ensure()
        run_worker()  # first scans, removal requests to the stub, notifications
        report_demo_ensure()
        run_worker()  # the reports (low queue), their e-mails

        # Periodic jobs: the built-in ones (as migrated), an operator's that completes, one that
        # fails, one whose missed tick is skipped (catch-up "none"), and a customer's own.
        from django.apps import apps

        importlib.import_module("jobs.migrations.0006_builtin_periodic_jobs").create_builtins(apps, None)
        nightly = periodic_job_create(
            name="nightly ping", job_type="jobs.ping", payload={"message": "nightly"}, cron_expression="0 4 * * *"
        )
        periodic_job_create(
            name="provider check",
            job_type="tests.permanent",
            payload={"message": "provider said no"},
            frequency="hourly",
            max_attempts=2,
            retry_delays=[30],
            description="Fails every time: its runs are the failed kind.",
        )
        missed = periodic_job_create(
            name="strict ping",
            job_type="jobs.ping",
            payload={"message": "only on time"},
            cron_expression="*/15 * * * *",
            catch_up="none",
        )
        customer_job = periodic_job_create(
            name="my Monday ping",
            job_type="jobs.ping",
            payload={"message": "mine"},
            cron_expression="0 9 * * 1",
            timezone="America/New_York",
            owner=premium,
        )

        # Every schedule's tick falls due (a catch-up after downtime) and fires: "last run" everywhere.
        now = timezone.now()
        Schedule.objects.filter(enabled=True).update(next_run_at=now - timedelta(minutes=1))
        Schedule.objects.filter(periodic_job=missed).update(next_run_at=now - timedelta(hours=2))
        blocker = enqueue("tests.block", {"name": "never-started"}, delay=3600)
        busy = Schedule.objects.filter(config__job_type="jobs.ping").first()
        JobRun.objects.filter(pk=blocker.pk).update(schedule=busy)  # its next tick is skipped (overlap)
        schedules_fire(Schedule.objects.values_list("pk", flat=True), now=now)
        run_worker()
        schedules_record_outcomes()

        # A built-in job an operator switched off: the dashboard lists it.
        periodic_job_set_enabled(PeriodicJob.objects.get(builtin=True, name="voiceprint.batch"), False)

        failed = enqueue("tests.permanent", {"message": "provider said no"})
        retried = enqueue("tests.permanent", {"message": "failed once, retried by hand"})
        retrying = enqueue("tests.fail", {"message": "provider timed out", "retry_after": 3600})
        run_worker()
        job_run_retry(JobRun.objects.get(pk=retried.pk))
        run_worker()
        cancelled = enqueue("jobs.ping", {"message": "not wanted"}, delay=3600)
        job_run_cancel(cancelled, reason="cancelled by the lived-in fixture")
        job_run_cancel(JobRun.objects.get(pk=blocker.pk), reason="cancelled: never started")

        demo_sub = premium.subscriptions.get()
        profile = VoiceProfile.objects.create(
            subscription=demo_sub,
            model_name="features-v1",
            embedding=[0.0] * 4,
            sample_count=1,
            speech_seconds=8.0,
            enrolled_at=timezone.now(),
        )
        sample = VoiceSample.objects.create(subscription=demo_sub, file="voice/x.wav", original_name="x.wav")
        AnalysisJob.objects.create(sample=sample)
    finally:
        server.shutdown()
        server.server_close()
    return {
        "failed": failed,
        "retrying": retrying,
        "retried": retried,
        "cancelled": cancelled,
        "profile": profile,
        "periodic": nightly,
        "customer_periodic": customer_job,
    }
