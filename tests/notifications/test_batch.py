"""Fan-out delivery: notify_many() queues `notifications.send_batch` jobs, and a batch delivers its
notifications several at a time with the same guarantees as one `notifications.send` each."""

import os
import signal
import socket
import threading
import time
from datetime import time as clock_time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core import mail
from django.db import connection, connections
from django.utils import timezone
from werkzeug import Response

from jobs import enqueue
from jobs.errors import PayloadInvalid
from jobs.models import JobRun
from jobs.services import delayed_runs_push_due, job_run_cancel, job_runs_recover
from notifications import kinds
from notifications.delivery import notifications_claim
from notifications.models import Notification, NotificationPreference, WebhookDelivery, WebhookEndpoint
from notifications.services import BATCH_JOB, SEND_JOB, notifications_reconcile, notify, notify_many
from tests.factories import UserFactory
from tests.notifications import serve_in_turn
from tests.notifications.test_delivery import PHONE, json_response, twilio_answer, user_reachable_by

pytestmark = pytest.mark.django_db(transaction=True)

CONFIRMED = {"subscription_id": 7, "broker": "PeopleFinder"}
REMIND = {"message": "Your plan renews on Friday.", "subject": "Plan renewal"}


def runs_of(job_type: str):
    return JobRun.objects.filter(job_type=job_type)


@pytest.fixture
def receiver(httpserver):
    def answer(*statuses):
        responses = [Response("ok" if code < 300 else f"receiver says {code}", status=code) for code in statuses]
        return serve_in_turn(httpserver, "/hooks", *responses)

    return answer


def webhook_owners(url: str, count: int) -> list:
    owners = [UserFactory(email=f"ops{i}@customer.example") for i in range(count)]
    for owner in owners:
        WebhookEndpoint.objects.create(owner=owner, url=url)
    return owners


class HangingReceiver:
    """A port that accepts connections and never answers: a receiver that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hooks"

    def close(self):
        self.sock.close()


def test_a_fan_out_queues_batches_and_a_burst_worker_sends_each_email_once(run_worker, settings):
    settings.NOTIFICATIONS_BATCH_SIZE = 10
    users = [UserFactory(email=f"user{i}@example.com") for i in range(25)]

    created = notify_many(users, kinds.REMINDER, REMIND, channels=["email"])

    assert len(created) == 25
    assert runs_of(SEND_JOB).count() == 0  # not one job per notification...
    batches = list(runs_of(BATCH_JOB))
    assert sorted(len(run.payload["notification_ids"]) for run in batches) == [5, 10, 10]  # ...but batches
    assert {n.job_run_id for n in Notification.objects.all()} == {run.pk for run in batches}

    run_worker()

    assert sorted(message.to[0] for message in mail.outbox) == sorted(user.email for user in users)
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    assert set(runs_of(BATCH_JOB).values_list("status", flat=True)) == {"completed"}
    # Each with its own stable Message-ID, as a single send has.
    assert len({message.extra_headers["Message-ID"] for message in mail.outbox}) == 25


def test_an_empty_fan_out_queues_nothing():
    assert notify_many([], kinds.REMINDER, REMIND) == []
    assert not JobRun.objects.exists()


def test_a_fan_out_with_an_unsaved_user_creates_nothing():
    from django.contrib.auth import get_user_model

    from notifications.errors import NotificationInvalid

    with pytest.raises(NotificationInvalid):
        notify_many([UserFactory(), get_user_model()(username="ghost")], kinds.REMINDER, REMIND)
    assert not Notification.objects.exists() and not JobRun.objects.exists()


def test_a_batch_payload_must_name_between_one_and_the_maximum_notifications():
    with pytest.raises(PayloadInvalid):
        enqueue(BATCH_JOB, {"notification_ids": []})
    with pytest.raises(PayloadInvalid):
        enqueue(BATCH_JOB, {"notification_ids": list(range(1, 1002))})
    with pytest.raises(PayloadInvalid):
        enqueue(BATCH_JOB, {"notification_ids": [0, -3]})


def test_a_batch_naming_a_missing_notification_still_sends_the_others(run_worker):
    users = [UserFactory(email=f"user{i}@example.com") for i in range(3)]
    created = notify_many(users, kinds.REMINDER, REMIND, channels=["email"])
    Notification.objects.filter(pk=created[0].pk).delete()

    run_worker()

    assert len(mail.outbox) == 2
    (run,) = runs_of(BATCH_JOB)
    assert run.status == "completed"
    assert run.result["sent"] == 2 and run.result["failed"] == 1


def test_quiet_hours_still_hold_back_a_text_in_a_fan_out(run_worker, settings):
    settings.NOTIFICATIONS_BATCH_SIZE = 10
    sleeper = user_reachable_by("sms", PHONE)
    NotificationPreference.objects.filter(user=sleeper).update(
        quiet_hours_start=clock_time(22, 0), quiet_hours_end=clock_time(7, 0)
    )
    awake = UserFactory(email="awake@example.com")
    with time_machine.travel("2026-11-23 23:30:00+00:00", tick=False):
        created = notify_many([sleeper, awake], kinds.REMINDER, REMIND, channels=["sms", "email"])
    held = next(n for n in created if n.channel == "sms")

    assert held.send_at is not None and held.send_at.hour == 7
    # The held text keeps its own delayed job; only what is due now rides in a batch.
    assert JobRun.objects.get(pk=held.job_run_id).job_type == SEND_JOB
    (batch,) = runs_of(BATCH_JOB)
    assert batch.payload["notification_ids"] == [n.pk for n in created if n.channel == "email"]


def test_a_hanging_receiver_does_not_delay_the_others_beyond_its_timeout(run_worker, receiver, httpserver, settings):
    settings.NOTIFICATIONS_BATCH_CONCURRENCY = 4
    received = receiver(200)
    hanging = HangingReceiver()
    try:
        stuck_owner = UserFactory()
        WebhookEndpoint.objects.create(owner=stuck_owner, url=hanging.url)
        owners = webhook_owners(httpserver.url_for("/hooks"), 12)
        # The hanging endpoint first, where a one-at-a-time sender would wait on it before the rest.
        notify_many([stuck_owner, *owners], kinds.REMOVEBROKERS_CONFIRMED, CONFIRMED, channels=["webhook"])
        started, started_at = time.monotonic(), timezone.now()

        run_worker()

        elapsed = time.monotonic() - started
    finally:
        hanging.close()

    assert len(received) == 12
    fast = Notification.objects.exclude(webhook_endpoint__owner=stuck_owner)
    assert set(fast.values_list("status", flat=True)) == {"sent"}
    # Everyone else was delivered while the stuck one waited for its 5 s timeout...
    assert max(fast.values_list("sent_at", flat=True)) - started_at < timedelta(seconds=3)
    # ...which ended it (to be retried, with its delivery row) without holding the batch much beyond it.
    stuck = Notification.objects.get(webhook_endpoint__owner=stuck_owner)
    assert stuck.status == "queued" and stuck.error, stuck.error
    assert elapsed < 9
    assert WebhookDelivery.objects.filter(notification=stuck, succeeded=False).count() == 1
    assert runs_of(BATCH_JOB).get().status == "retrying"


def test_a_cancelled_batch_starts_no_further_delivery(run_worker, receiver, httpserver, settings):
    settings.NOTIFICATIONS_BATCH_CONCURRENCY = 1
    received = receiver(200)
    hanging = HangingReceiver()
    stuck_owner = UserFactory()
    WebhookEndpoint.objects.create(owner=stuck_owner, url=hanging.url)
    owners = webhook_owners(httpserver.url_for("/hooks"), 5)
    notify_many([stuck_owner, *owners], kinds.REMOVEBROKERS_CONFIRMED, CONFIRMED, channels=["webhook"])
    (batch,) = runs_of(BATCH_JOB)
    accepted = []

    def operator_cancels_while_the_first_delivery_hangs():
        accepted.append(hanging.sock.accept()[0])
        job_run_cancel(JobRun.objects.get(pk=batch.pk), reason="wrong audience")
        connections.close_all()

    operator = threading.Thread(target=operator_cancels_while_the_first_delivery_hangs)
    operator.start()
    try:
        run_worker()
    finally:
        operator.join(10)
        for sock in accepted:
            sock.close()
        hanging.close()

    assert received == []
    batch.refresh_from_db()
    assert batch.status == "cancelled"
    # What it never reached is not sent later by surprise: the reconcile pass fails it.
    notifications_reconcile()
    assert set(Notification.objects.values_list("status", flat=True)) == {"failed"}


def test_the_circuit_breaker_opens_after_five_consecutive_failures_when_deliveries_overlap(
    run_worker, receiver, httpserver, settings
):
    settings.NOTIFICATIONS_BATCH_CONCURRENCY = 4
    received = receiver(503)
    owner = UserFactory(email="ops@customer.example")
    endpoint = WebhookEndpoint.objects.create(owner=owner, url=httpserver.url_for("/hooks"))
    notify_many([owner] * 12, kinds.REMOVEBROKERS_CONFIRMED, CONFIRMED, channels=["webhook"])  # one batch of 12
    assert runs_of(BATCH_JOB).count() == 1

    run_worker()

    endpoint.refresh_from_db()
    assert not endpoint.active
    # Opened by the fifth failure, whichever thread recorded it; those in flight then still count.
    assert endpoint.disabled_reason.startswith("5 consecutive failed deliveries; last: webhook receiver")
    assert endpoint.consecutive_failures == len(received)
    # At most the ones already in flight when it opened go out after the fifth failure.
    assert 5 <= len(received) <= 5 + 4 - 1
    assert WebhookDelivery.objects.filter(succeeded=False).count() == len(received)
    # The owner hears once, however many deliveries overlapped.
    (email,) = mail.outbox
    assert email.subject == f"Kordant stopped sending to your webhook {endpoint.url}"
    # What was not sent yet is suppressed once the batch is retried, not sent to the dead endpoint.
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        delayed_runs_push_due()
        run_worker()
    assert len(received) <= 8
    statuses = set(Notification.objects.filter(webhook_endpoint=endpoint).values_list("status", flat=True))
    assert statuses <= {"failed", "suppressed"} and "queued" not in statuses


def test_deliveries_claimed_ahead_are_not_sent_once_their_endpoints_breaker_opens(run_worker, httpserver, settings):
    # One sender, and the batch claims a chunk ahead of it: the fifth failure opens the breaker, and what
    # was claimed ahead for that endpoint goes back to the queue instead of to the dead receiver.
    settings.NOTIFICATIONS_BATCH_CONCURRENCY = 1

    def slow_refusal(request, number):
        time.sleep(0.1)  # the batch claims the next one while this is in flight
        return Response("receiver says 503", status=503)

    received = serve_in_turn(httpserver, "/hooks", slow_refusal)
    owner = UserFactory(email="ops@customer.example")
    endpoint = WebhookEndpoint.objects.create(owner=owner, url=httpserver.url_for("/hooks"))
    notify_many([owner] * 12, kinds.REMOVEBROKERS_CONFIRMED, CONFIRMED, channels=["webhook"])

    run_worker()

    assert len(received) == 5
    never_sent = Notification.objects.filter(webhook_endpoint=endpoint, attempts=0)
    # Claimed before the breaker opened: back in the queue, never sent. Claimed after: suppressed.
    assert never_sent.count() == 7 and never_sent.filter(status="queued").exists()
    assert set(never_sent.values_list("status", flat=True)) == {"queued", "suppressed"}
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        delayed_runs_push_due()
        run_worker()
    assert len(received) == 5
    assert set(never_sent.values_list("status", flat=True)) == {"suppressed"}


def test_a_batch_writes_its_emails_and_webhooks_a_chunk_per_statement(receiver, httpserver, monkeypatch, settings):
    # The senders only send; the batch's own thread claims and records many notifications per statement.
    # One at a time, each cost eight statements or more (claim, delivery row, breaker, status): now under two.
    from django.db.backends import utils

    from notifications.batch import notifications_deliver_batch

    received = receiver(200)
    owners = webhook_owners(httpserver.url_for("/hooks"), 24)
    created = notify_many(owners, kinds.REMOVEBROKERS_CONFIRMED, CONFIRMED, channels=["webhook", "email"])
    statements = []
    execute = utils.CursorWrapper._execute_with_wrappers

    def counted(self, sql, *args, **kwargs):
        statements.append(sql)
        return execute(self, sql, *args, **kwargs)

    monkeypatch.setattr(utils.CursorWrapper, "_execute_with_wrappers", counted)
    # Successes recorded a chunk at a time, not early by the clock, however slow a loaded machine is.
    monkeypatch.setattr("notifications.batch._RECORD_WITHIN", 60)

    result = notifications_deliver_batch([n.pk for n in created], claimed_by="1:1", last_attempt=True, concurrency=8)

    assert result["sent"] == 48 and len(received) == 24 and len(mail.outbox) == 24
    assert len(statements) < 2 * len(created), statements
    rows = Notification.objects.values_list("pk", "channel", "status", "attempts", "provider_message_id")
    for pk, channel, status, attempts, provider_message_id in rows:
        assert (status, attempts) == ("sent", 1)
        assert provider_message_id == (f"ntf_{pk}" if channel == "webhook" else f"<notification-{pk}@kordant.example>")
    assert WebhookDelivery.objects.filter(succeeded=True, status_code=200).count() == 24


def test_sms_and_push_claimed_by_an_attempt_that_crashed_are_never_resent(run_worker, httpserver, settings):
    settings.TWILIO_API_BASE = settings.EXPO_PUSH_URL = httpserver.url_for("")
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC" + "0123456789abcdef" * 2, "token"
    settings.TWILIO_FROM_NUMBER = "+14155550100"
    texts = serve_in_turn(
        httpserver, f"/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages.json", twilio_answer(201, None)
    )
    ticket = {"data": {"status": "ok", "id": "receipt"}}
    pushes = serve_in_turn(httpserver, "/--/api/v2/push/send", json_response(200, ticket))
    texters = [user_reachable_by("sms", f"+4477009001{i:02d}") for i in range(4)]
    phones = [user_reachable_by("push", f"ExponentPushToken[device-{i}]") for i in range(4)]
    created = notify_many([*texters, *phones], kinds.REMINDER, REMIND, channels=["sms", "push"])
    (batch,) = runs_of(BATCH_JOB)
    # The batch's first attempt claimed two of each and died before it could tell what happened.
    crashed = [n for n in created if n.recipient in (texters[0], texters[1], phones[0], phones[1])]
    Notification.objects.filter(pk__in=[n.pk for n in crashed]).update(
        status="sending", attempts=1, claimed_at=timezone.now(), claimed_by=f"{batch.pk}:0"
    )

    run_worker()

    assert len(texts) == 2 and len(pushes) == 2  # only the ones never claimed
    assert {request.form["To"] for request in texts} == {"+447700900102", "+447700900103"}
    for notification in Notification.objects.filter(pk__in=[n.pk for n in crashed]):
        assert notification.status == "failed" and notification.reason.startswith("outcome unknown")
    assert Notification.objects.filter(status="sent").count() == 4


def test_a_batch_killed_midway_loses_nothing_and_resends_no_email_it_had_sent(run_worker):
    users = [UserFactory(email=f"user{i}@example.com") for i in range(6)]
    created = notify_many(users, kinds.REMINDER, REMIND, channels=["email"])
    (batch,) = runs_of(BATCH_JOB)
    # The first attempt sent two, had claimed two more when it died, and never reached the last two.
    sent, claimed = created[:2], created[2:4]
    Notification.objects.filter(pk__in=[n.pk for n in sent]).update(
        status="sent", attempts=1, sent_at=timezone.now(), claimed_by=f"{batch.pk}:0"
    )
    Notification.objects.filter(pk__in=[n.pk for n in claimed]).update(
        status="sending", attempts=1, claimed_at=timezone.now(), claimed_by=f"{batch.pk}:0"
    )

    run_worker()

    # At least once for what it had claimed (the same Message-ID, so the second copy collapses)...
    assert sorted(message.to[0] for message in mail.outbox) == sorted(u.email for u in users[2:])
    for notification in claimed:
        (message,) = [m for m in mail.outbox if m.to == [notification.recipient.email]]
        assert message.extra_headers["Message-ID"].startswith(f"<notification-{notification.pk}@")
    # ...and nothing it had sent goes twice.
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    assert runs_of(BATCH_JOB).get().result["skipped"] == 2


def killed_mid_batch_then_retried(worker_process, run_worker, batch, *, reached, release) -> None:
    """Start a worker; once `reached` is set, SIGKILL it with its work horse, then let the receiver go.
    The batch's run is found lost and retried on its backoff by a burst worker."""
    worker = worker_process()
    try:
        assert reached.wait(30), "the worker never got that far"
        horses = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
        for pid in [worker.pid, *map(int, horses)]:
            os.kill(pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        release.set()
    assert job_runs_recover().lost == [str(batch.pk)]
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        assert delayed_runs_push_due() == 1
        run_worker()


def test_a_worker_killed_mid_batch_never_resends_the_text_it_was_sending(
    worker_process, run_worker, httpserver, settings, monkeypatch
):
    # Real processes: one worker delivering a batch one text at a time, SIGKILLed (with its work horse)
    # while Twilio holds the third text: taken or not, nobody can tell.
    monkeypatch.setenv("NOTIFICATIONS_BATCH_CONCURRENCY", "1")
    settings.TWILIO_API_BASE = httpserver.url_for("")
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC" + "0123456789abcdef" * 2, "token"
    settings.TWILIO_FROM_NUMBER = "+14155550100"
    for name in ("TWILIO_API_BASE", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"):
        monkeypatch.setenv(name, getattr(settings, name))  # the worker process reads its environment
    third_arrived, release = threading.Event(), threading.Event()

    def answer(request, number):
        if number == 3:
            third_arrived.set()
            release.wait(10)
        return twilio_answer(201, None)(request, number)

    texts = serve_in_turn(httpserver, f"/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages.json", answer)
    texters = [user_reachable_by("sms", f"+4477009001{i:02d}") for i in range(6)]
    notify_many(texters, kinds.REMINDER, REMIND, channels=["sms"])
    (batch,) = runs_of(BATCH_JOB)

    killed_mid_batch_then_retried(worker_process, run_worker, batch, reached=third_arrived, release=release)
    in_doubt = texts[2].form["To"]

    by_phone = {}
    for request in texts:
        by_phone[request.form["To"]] = by_phone.get(request.form["To"], 0) + 1
    assert by_phone == {texter.notification_preferences.get().address: 1 for texter in texters}  # none twice
    doubtful = Notification.objects.get(address=in_doubt)
    assert doubtful.status == "failed" and doubtful.reason.startswith("outcome unknown")
    assert Notification.objects.filter(status="sent").count() == 5
    assert runs_of(BATCH_JOB).get().status == "completed"


def test_a_worker_killed_mid_batch_loses_no_webhook_and_resends_only_under_the_same_id(
    worker_process, run_worker, httpserver, monkeypatch
):
    # Real processes: a worker delivering a batch of webhooks four at a time is SIGKILLed (with its work
    # horse) while the receiver holds the tenth and later requests. Some were recorded, some sent and not
    # yet recorded, some in flight, some claimed ahead, the rest never reached.
    monkeypatch.setenv("NOTIFICATIONS_BATCH_CONCURRENCY", "4")
    tenth_arrived, release = threading.Event(), threading.Event()

    def answer(request, number):
        if number >= 10:
            tenth_arrived.set()
            release.wait(10)
        return Response("ok")

    received = serve_in_turn(httpserver, "/hooks", answer)
    owners = webhook_owners(httpserver.url_for("/hooks"), 30)
    created = notify_many(owners, kinds.REMOVEBROKERS_CONFIRMED, CONFIRMED, channels=["webhook"])
    (batch,) = runs_of(BATCH_JOB)

    killed_mid_batch_then_retried(worker_process, run_worker, batch, reached=tenth_arrived, release=release)

    delivery_ids = [request.headers["Kordant-Delivery"] for request in received]
    assert set(delivery_ids) == {f"ntf_{n.pk}" for n in created}  # none lost
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    # At least once: what was in flight or sent but unrecorded went again, under the same id.
    twice = [delivery_id for delivery_id in set(delivery_ids) if delivery_ids.count(delivery_id) > 1]
    assert len(delivery_ids) == 30 + len(twice) and len(twice) <= 2 * 4
    assert runs_of(BATCH_JOB).get().status == "completed"


def test_the_sms_cap_holds_when_a_users_texts_are_claimed_at_once(run_worker, httpserver, settings):
    settings.NOTIFICATIONS_SMS_PER_HOUR = 3
    settings.NOTIFICATIONS_BATCH_CONCURRENCY = 8
    settings.TWILIO_API_BASE = httpserver.url_for("")
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC" + "0123456789abcdef" * 2, "token"
    settings.TWILIO_FROM_NUMBER = "+14155550100"
    texts = serve_in_turn(
        httpserver, f"/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages.json", twilio_answer(201, None)
    )
    texter = user_reachable_by("sms", PHONE)
    notify_many([texter] * 8, kinds.REMINDER, REMIND, channels=["sms"])

    run_worker()

    assert len(texts) == 3
    assert sorted(Notification.objects.values_list("status", flat=True)) == ["sent"] * 3 + ["suppressed"] * 5


def test_a_failed_delivery_retries_the_batch_which_resends_only_what_failed(run_worker, receiver, httpserver):
    received = receiver(503, 200)
    owners = webhook_owners(httpserver.url_for("/hooks"), 3)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        notify_many(owners, kinds.REMOVEBROKERS_CONFIRMED, CONFIRMED, channels=["webhook"])
        run_worker()
        (batch,) = runs_of(BATCH_JOB)
        assert batch.status == "retrying" and "1 of 3" in batch.error
        clock.shift(timedelta(seconds=60))
        assert delayed_runs_push_due() == 1
        run_worker()

    assert len(received) == 4
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    rows = sorted(WebhookDelivery.objects.values_list("attempt", "succeeded"))
    assert rows == [(1, False), (1, True), (1, True), (2, True)]  # one row per attempt, numbered per notification
    assert runs_of(BATCH_JOB).get().status == "completed"


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server (aiosmtpd) on loopback that counts connections and messages."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    from kordant.embedded_redis import free_port

    class Counts:
        connections = 0
        messages: list = []

        async def handle_DATA(self, server, session, envelope):
            Counts.messages.append(envelope)
            return "250 Message accepted for delivery"

    class CountingSMTP(SMTP):
        def connection_made(self, transport):
            Counts.connections += 1
            super().connection_made(transport)

    class CountingController(Controller):
        def factory(self):
            return CountingSMTP(self.handler)

    Counts.messages = []
    port = free_port()
    controller = CountingController(Counts(), hostname="127.0.0.1", port=port)
    controller.start()
    Counts.connections = 0  # the controller's own check that it is up
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    Counts.port = port
    yield Counts
    controller.stop()


def test_the_emails_of_a_batch_reuse_one_smtp_connection(run_worker, settings, smtp_server):
    settings.NOTIFICATIONS_BATCH_SIZE = 20
    settings.NOTIFICATIONS_BATCH_CONCURRENCY = 4
    users = [UserFactory(email=f"user{i}@example.com") for i in range(40)]
    notify_many(users, kinds.REMINDER, REMIND, channels=["email"])

    run_worker()

    assert len(smtp_server.messages) == 40
    assert smtp_server.connections == 2  # two batches, one connection each (not 40)
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a race between two real database sessions")
def test_two_batches_racing_on_the_same_notifications_send_each_once(worker_process, httpserver, settings):
    settings.NOTIFICATIONS_BATCH_SIZE = 1000

    def slow(request, number):
        time.sleep(0.02)  # long enough that the two workers' batches overlap
        return Response("ok")

    received = serve_in_turn(httpserver, "/hooks", slow)
    owners = webhook_owners(httpserver.url_for("/hooks"), 30)
    created = notify_many(owners, kinds.REMOVEBROKERS_CONFIRMED, CONFIRMED, channels=["webhook"])
    ids = [n.pk for n in created]
    for reverse in (False, True):  # two more batches of the same notifications, one in the other order
        enqueue(BATCH_JOB, {"notification_ids": ids[::-1] if reverse else ids})

    workers = [worker_process("--burst"), worker_process("--burst")]
    for worker in workers:
        assert worker.wait(60) == 0

    delivery_ids = sorted(request.headers["Kordant-Delivery"] for request in received)
    assert delivery_ids == sorted(f"ntf_{pk}" for pk in ids)  # each once, none twice
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    assert WebhookDelivery.objects.count() == 30


def test_a_fan_out_end_to_end_through_a_real_burst_worker(worker_process, httpserver, smtp_server, monkeypatch):
    monkeypatch.setenv("EMAIL_URL", f"smtp://127.0.0.1:{smtp_server.port}")
    received = serve_in_turn(httpserver, "/hooks", Response("ok"))
    owners = webhook_owners(httpserver.url_for("/hooks"), 15)
    created = notify_many(owners, kinds.REMOVEBROKERS_CONFIRMED, CONFIRMED, channels=["webhook", "email"])
    assert len(created) == 30 and runs_of(SEND_JOB).count() == 0

    assert worker_process("--burst").wait(60) == 0

    assert len(received) == 15 and len(smtp_server.messages) == 15
    assert smtp_server.connections == 1
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    assert set(runs_of(BATCH_JOB).values_list("status", flat=True)) == {"completed"}
    assert WebhookDelivery.objects.filter(succeeded=True).count() == 15


def test_a_claim_leaves_the_rows_it_does_not_claim_as_they_were():
    # On either database: a notification already sent is reported as handled, untouched.
    user = user_reachable_by("email", "someone@example.com")
    (sent,) = notify(user, kinds.REMINDER, {"message": "done"}, channels=["email"])
    (waiting,) = notify(user, kinds.REMINDER, {"message": "next"}, channels=["email"])
    long_ago = timezone.now() - timedelta(days=1)
    Notification.objects.filter(pk=sent.pk).update(status=Notification.Status.SENT, updated_at=long_ago)

    claims = notifications_claim([sent.pk, waiting.pk], "run-1:1")

    assert not isinstance(claims[sent.pk], Notification)
    assert isinstance(claims[waiting.pk], Notification)
    assert Notification.objects.get(pk=sent.pk).updated_at == long_ago
