"""The email channel end to end: notify, a burst worker, Django's locmem (or a real SMTP) backend."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from jobs import enqueue
from jobs.models import JobRun
from jobs.services import delayed_runs_push_due
from notifications import kinds
from notifications.models import Notification
from notifications.services import notify
from tests.factories import UserFactory
from tests.notifications import closed_port

pytestmark = pytest.mark.django_db(transaction=True)

CONTEXTS = {
    kinds.DARKWATCH_EXPOSURE: {
        "subscription_id": 7,
        "new_alerts": 3,
        "highest_severity": "critical",
        "breaches": ["ExampleCorp 2024", "Forum <leak>"],
    },
    kinds.HOMETITLE_CHANGE: {
        "subscription_id": 7,
        "changes": 1,
        "highest_severity": "high",
        "documents": [
            {
                "property": "12 Elm St, Springfield",
                "document_type": "Quitclaim deed",
                "document_number": "2026-0041187",
                "recorded_date": "2026-11-20",
            }
        ],
    },
    kinds.REPORTS_READY: {
        "subscription_id": 7,
        "report_id": 99,
        "period_start": "2026-10-01",
        "period_end": "2026-10-31",
        "download_url": "https://app.kordant.example/reports/99.pdf",
    },
    kinds.REMOVEBROKERS_CONFIRMED: {"subscription_id": 7, "broker": "PeopleFinder"},
    kinds.REMOVEBROKERS_NEEDS_ACTION: {
        "subscription_id": 7,
        "broker": "PeopleFinder",
        "instructions": "Click the link PeopleFinder emailed you within 7 days.",
    },
    kinds.REMINDER: {"message": "Your plan renews on Friday.", "subject": "Plan renewal"},
    kinds.JOBS_FAILED: {"job_run_id": "5b0e", "job_type": "darkwatch.scan", "error": "breach feed answered 503"},
    kinds.JOBS_MONITOR: {"check": "queue_depth:default", "summary": "queue default holds 1500 jobs (limit 1000)"},
}
# What each kind's email must tell its reader, in the subject and in both bodies.
EXPECTED = {
    kinds.DARKWATCH_EXPOSURE: ("[CRITICAL] 3 new dark-web exposures found", ["ExampleCorp 2024", "critical"]),
    kinds.HOMETITLE_CHANGE: ("[HIGH] 1 change to your property records", ["12 Elm St, Springfield", "2026-0041187"]),
    kinds.REPORTS_READY: (
        "Your Kordant report for 2026-10-01 to 2026-10-31 is ready",
        ["https://app.kordant.example/reports/99.pdf"],
    ),
    kinds.REMOVEBROKERS_CONFIRMED: ("PeopleFinder confirmed your removal", ["PeopleFinder"]),
    kinds.REMOVEBROKERS_NEEDS_ACTION: (
        "PeopleFinder needs your action to remove your data",
        ["Click the link PeopleFinder emailed you within 7 days."],
    ),
    kinds.REMINDER: ("Plan renewal", ["Your plan renews on Friday."]),
    kinds.JOBS_FAILED: ("[Kordant jobs] darkwatch.scan failed", ["5b0e", "breach feed answered 503"]),
    kinds.JOBS_MONITOR: (
        "[Kordant jobs] alert: queue default holds 1500 jobs (limit 1000)",
        ["queue_depth:default", "1500 jobs"],
    ),
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_each_kind_sends_an_email_with_its_subject_text_and_html(run_worker, settings, kind):
    user = UserFactory(email="dana@example.com")
    (notification,) = notify(user, kind, CONTEXTS[kind])

    run_worker()

    (email,) = mail.outbox
    subject, phrases = EXPECTED[kind]
    assert email.subject == subject
    assert email.to == ["dana@example.com"] and email.from_email == settings.DEFAULT_FROM_EMAIL
    ((html, mimetype),) = email.alternatives
    assert mimetype == "text/html" and html.startswith("<!doctype html>")
    for phrase in phrases:
        assert phrase in email.body
        assert phrase.replace("'", "&#x27;") in html
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 1)
    assert notification.sent_at is not None
    assert (
        email.extra_headers["Message-ID"]
        == notification.provider_message_id
        == (f"<notification-{notification.pk}@kordant.example>")
    )


def test_text_is_not_escaped_and_html_is():
    notify(UserFactory(), kinds.DARKWATCH_EXPOSURE, CONTEXTS[kinds.DARKWATCH_EXPOSURE])
    from jobs.runner import execute

    execute(str(Notification.objects.get().job_run_id))
    (email,) = mail.outbox
    assert "Forum <leak>" in email.body
    assert "Forum &lt;leak&gt;" in email.alternatives[0][0] and "<leak>" not in email.alternatives[0][0]


def test_a_duplicated_send_job_sends_once(run_worker):
    (notification,) = notify(UserFactory(), kinds.REMINDER, {"message": "once"})
    # A second run for the same notification (an operator's copy, a replayed message), queued beside the first.
    duplicate = enqueue("notifications.send", {"notification_id": notification.pk}, dedupe_key="replay")

    run_worker()

    assert len(mail.outbox) == 1
    duplicate.refresh_from_db()
    assert duplicate.status == "completed" and duplicate.result["skipped"] == "already handled"
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 1)


def test_a_send_job_run_again_after_success_sends_nothing(run_worker):
    (notification,) = notify(UserFactory(), kinds.REMINDER, {"message": "once"})
    run_worker()
    enqueue("notifications.send", {"notification_id": notification.pk})
    run_worker()
    assert len(mail.outbox) == 1


def test_an_email_whose_worker_died_mid_send_is_sent_again_with_the_same_message_id(run_worker):
    (notification,) = notify(UserFactory(), kinds.REMINDER, {"message": "again"})
    # What a worker killed between claiming and recording leaves behind: the row says sending,
    # claimed by an attempt that is no longer running.
    Notification.objects.filter(pk=notification.pk).update(
        status="sending", attempts=1, claimed_at=timezone.now(), claimed_by=f"{notification.job_run_id}:0"
    )

    run_worker()

    (email,) = mail.outbox
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 2)
    assert email.extra_headers["Message-ID"] == f"<notification-{notification.pk}@kordant.example>"


def test_an_unreachable_mail_server_is_retried_then_the_email_goes_out(run_worker, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    with time_machine.travel(timezone.now(), tick=False) as clock:
        (notification,) = notify(UserFactory(), kinds.REMINDER, {"message": "eventually"})
        run_worker()

        notification.refresh_from_db()
        run = JobRun.objects.get(pk=notification.job_run_id)
        assert (run.status, run.attempt) == ("retrying", 1)
        assert notification.status == "queued" and "mail server unavailable" in notification.error

        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        clock.shift(timedelta(seconds=60))
        assert delayed_runs_push_due() == 1
        run_worker()

    notification.refresh_from_db()
    assert (notification.status, notification.attempts, notification.error) == ("sent", 2, "")
    assert len(mail.outbox) == 1


def test_an_email_turned_off_after_queueing_is_suppressed_not_sent(run_worker):
    from notifications.models import NotificationPreference

    user = UserFactory()
    (notification,) = notify(user, kinds.REMINDER, {"message": "x"})
    NotificationPreference.objects.create(user=user, channel="email", enabled=False)

    run_worker()

    notification.refresh_from_db()
    assert (notification.status, notification.reason) == ("suppressed", "the user has turned email off")
    assert mail.outbox == []


def test_pruning_old_send_runs_keeps_the_notification(run_worker):
    from jobs.services import job_runs_prune

    (notification,) = notify(UserFactory(), kinds.REMINDER, {"message": "kept"})
    run_worker()
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert job_runs_prune().deleted == 1
    notification.refresh_from_db()
    assert (notification.status, notification.job_run_id) == ("sent", None)


def test_reconcile_fails_a_notification_whose_last_send_attempt_was_lost(run_worker):
    from django.core.management import call_command

    (lost, fine) = (notify(UserFactory(), kinds.REMINDER, {"message": m})[0] for m in ("lost", "fine"))
    # The last attempt's worker died mid-send: the row says sending, and the run failed as WorkerLost.
    Notification.objects.filter(pk=lost.pk).update(status="sending", claimed_by=f"{lost.job_run_id}:4")
    JobRun.objects.filter(pk=lost.job_run_id).update(status="failed", error_type="WorkerLost")

    call_command("notifications_reconcile")

    lost.refresh_from_db()
    fine.refresh_from_db()
    assert lost.status == "failed"
    assert lost.reason == f"its send job (run {lost.job_run_id}, failed) ended while sending it: outcome unknown"
    assert fine.status == "queued"  # its run is still waiting to run
