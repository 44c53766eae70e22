"""Fan-out delivery: today's one `notifications.send` job per notification beside notify_many()'s batches.

Both sides run end to end on the same number of workers (one forking `manage.py rqworker --burst`,
the project's KordantWorker), wall time from the worker's start to its exit; notify()/notify_many()
run before the clock starts, in one transaction, as a scan's fan-out would.

1. Webhooks to a loopback receiver that answers each POST after 50 ms, one endpoint per customer.
   Target: >= 300 deliveries/s and >= 10x today's rate.
2. E-mails through Django's SMTP backend to a local aiosmtpd server. Target: >= 200/s end to end
   with the exactly-once claim; the ceiling beside it is plain `send_mass_mail` of the same
   rendered messages over one connection, in this process.

Today's path runs at ~10/s, so it gets a sample (BENCH_FANOUT_TODAY, default 200) rather than all
BENCH_FANOUT_N (default 2000) notifications: a rate, not a total, is compared.
Knobs: BENCH_FANOUT_N, BENCH_FANOUT_TODAY, NOTIFICATIONS_BATCH_SIZE and NOTIFICATIONS_BATCH_CONCURRENCY
(passed to the worker). Run: `make bench BENCH_ARGS=fanout`.
"""

import os
import threading
import time
from http.server import ThreadingHTTPServer

from bench.notifications import _reset, _workers
from bench.webhooks import _Receiver

N = int(os.environ.get("BENCH_FANOUT_N", "2000"))
TODAY = int(os.environ.get("BENCH_FANOUT_TODAY", "200"))
RECEIVER_DELAY = 0.050
CONFIRMED = {"subscription_id": 1, "broker": "PeopleFinder"}
REMINDER = {"message": "Your plan renews on Friday.", "subject": "Plan renewal"}


class _SlowReceiver(_Receiver):
    count = 0
    lock = threading.Lock()

    def do_POST(self):
        time.sleep(RECEIVER_DELAY)
        super().do_POST()
        with self.lock:
            type(self).count += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops connection bursts, and a SYN retry costs 1 s


def _customers(prefix: str, count: int, url: str | None = None) -> list:
    """`count` users (with an email address), each with a webhook endpoint at `url` if given."""
    from django.contrib.auth import get_user_model

    from notifications.models import WebhookEndpoint

    User = get_user_model()
    User.objects.filter(username__startswith=prefix).delete()
    users = User.objects.bulk_create(
        [User(username=f"{prefix}{i}", email=f"{prefix}{i}@bench.example") for i in range(count)]
    )
    if url:
        WebhookEndpoint.objects.bulk_create([WebhookEndpoint(owner=user, url=url) for user in users])
    return users


def _today(users, kind: str, context: dict, channel: str, env: dict | None = None) -> float:
    from django.db import transaction

    from notifications.services import notify

    _reset()
    with transaction.atomic():
        for user in users:
            notify(user, kind, context, channels=[channel])
    return len(users) / _workers(1, env=env)


def _fanout(users, kind: str, context: dict, channel: str, env: dict | None = None) -> tuple[float, float]:
    """(deliveries/s end to end on one worker, notify_many notifications/s)."""
    from notifications.services import notify_many

    _reset()
    started = time.perf_counter()
    notify_many(users, kind, context, channels=[channel])
    created = len(users) / (time.perf_counter() - started)
    return len(users) / _workers(1, env=env), created


def _check_sent(expected: int, arrived: int) -> None:
    from notifications.models import Notification

    sent = Notification.objects.filter(status="sent").count()
    if sent != expected or arrived != expected:
        raise RuntimeError(f"{sent} sent, {arrived} arrived, of {expected}")


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def webhooks() -> None:
    server = _Server(("127.0.0.1", 0), _SlowReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hooks/kordant"
    try:
        users = _customers("bench-fanout-hook-", N, url)
        _SlowReceiver.count = 0
        today = _today(users[:TODAY], "removebrokers.confirmed", CONFIRMED, "webhook")
        _check_sent(TODAY, _SlowReceiver.count)
        _SlowReceiver.count = 0
        ours, created = _fanout(users, "removebrokers.confirmed", CONFIRMED, "webhook")
        _check_sent(N, _SlowReceiver.count)
        print(
            f"   webhooks, receiver answers after {RECEIVER_DELAY * 1000:.0f} ms, 1 worker: "
            f"today notifications.send {today:6.1f} /s ({TODAY})   "
            f"notify_many + send_batch {ours:6.1f} /s ({N})   ratio {ours / today:.1f}x",
            flush=True,
        )
        print(
            f"   target >= 300 /s: {_verdict(ours >= 300)}; >= 10x today: {_verdict(ours >= 10 * today)}   "
            f"(notify_many {created:,.0f} notifications/s)",
            flush=True,
        )
    finally:
        server.shutdown()
        server.server_close()
        _reset()


def email() -> None:
    from aiosmtpd.controller import Controller
    from django.core.mail import get_connection, send_mass_mail

    from kordant.embedded_redis import free_port
    from notifications.kinds import KINDS, render_email

    class Sink:
        count = 0

        async def handle_DATA(self, server, session, envelope):
            Sink.count += 1
            return "250 Message accepted for delivery"

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    env = {"EMAIL_URL": f"smtp://127.0.0.1:{port}"}
    try:
        users = _customers("bench-fanout-mail-", N)
        subject, text, _html = render_email(KINDS["reminder"], REMINDER)
        connection = get_connection("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=port)
        Sink.count = 0
        started = time.perf_counter()
        send_mass_mail([(subject, text, None, [user.email]) for user in users], connection=connection)
        ceiling = N / (time.perf_counter() - started)
        if Sink.count != N:
            raise RuntimeError(f"send_mass_mail: the sink got {Sink.count} of {N}")

        Sink.count = 0
        today = _today(users[:TODAY], "reminder", REMINDER, "email", env)
        _check_sent(TODAY, Sink.count)
        Sink.count = 0
        ours, _created = _fanout(users, "reminder", REMINDER, "email", env)
        _check_sent(N, Sink.count)
        print(
            f"   e-mail to aiosmtpd, 1 worker: today notifications.send {today:6.1f} /s ({TODAY})   "
            f"notify_many + send_batch {ours:6.1f} /s ({N})   ratio {ours / today:.1f}x",
            flush=True,
        )
        print(
            f"   target >= 200 /s: {_verdict(ours >= 200)}   ceiling, plain send_mass_mail over one connection "
            f"(text only, no claim, in-process): {ceiling:,.0f} /s",
            flush=True,
        )
    finally:
        controller.stop()
        _reset()


def main() -> None:
    print(
        f"   batch size {os.environ.get('NOTIFICATIONS_BATCH_SIZE', 500)}, "
        f"concurrency {os.environ.get('NOTIFICATIONS_BATCH_CONCURRENCY', 32)} (NOTIFICATIONS_BATCH_*)",
        flush=True,
    )
    webhooks()
    email()
