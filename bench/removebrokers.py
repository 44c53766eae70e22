"""RemoveBrokers: 10,000 pending opt-outs across 20 brokers, one processing pass, beside a bare httpx loop.

The brokers are the demo stub (scanners/removebrokers/stub.py) in its own process on
loopback, so the figures are our overhead plus a fast broker, not a real network. Each
broker allows RATE_LIMIT submissions a minute and has 500 requests waiting, so the pass
submits RATE_LIMIT per broker and defers the rest to the next minute: the limit binds,
and the figure is requests/s with it respected (checked afterwards from the database
and from Redis). The bare loop then POSTs the same number of the same bodies with one
httpx.Client, in the same run, with no database, claims, rate limit or error mapping.
"""

import os
import socket
import subprocess
import sys
import time

import httpx
from django.contrib.auth import get_user_model
from django.db import connection

from jobs.bulk import bulk_insert
from kordant.embedded_redis import free_port
from kordant.models import Subscription
from scanners.removebrokers.engine import RemovalEngine
from scanners.removebrokers.models import DataBroker, RemovalRequest
from scanners.removebrokers.ratelimit import KEY_PREFIX, BrokerRateLimiter

BROKERS = 20
PER_BROKER = int(os.environ.get("BENCH_RB_PER_BROKER", 500))
RATE_LIMIT = 150  # per broker per minute: binds within the pass


def main() -> None:
    port = free_port()
    stub = subprocess.Popen(
        [sys.executable, "-m", "scanners.removebrokers.stub", "--port", str(port)], stdout=subprocess.DEVNULL
    )
    try:
        _wait_for(port)
        base = f"http://127.0.0.1:{port}"
        brokers = _setup(base)
        print(
            f"   {BROKERS * PER_BROKER} pending requests across {BROKERS} brokers, limit {RATE_LIMIT}/min each, "
            f"{connection.vendor}"
        )
        limiter = BrokerRateLimiter()
        for broker in brokers:
            limiter.give_back(broker.pk)

        started = time.perf_counter()
        report = RemovalEngine(limiter=limiter).run()
        elapsed = time.perf_counter() - started
        print(
            f"   one pass: {report.submitted} submitted, {report.rate_limited} found their broker's minute used up, "
            f"in {elapsed:.1f} s = {report.submitted / elapsed:.0f} requests/s"
        )

        busiest = _busiest_minute()
        waiting = RemovalRequest.objects.filter(status="pending").count()
        window = [limiter.connection.zcard(f"{KEY_PREFIX}{broker.pk}") for broker in brokers]
        print(
            f"   limit respected: most submissions to one broker in any 60 s {busiest} (limit {RATE_LIMIT}); "
            f"slots held in Redis per broker {min(window)}-{max(window)}; {waiting} wait for the next minute"
        )

        bodies = list(RemovalRequest.objects.filter(status="submitted").values_list("pk", "broker__endpoint", "person"))
        started = time.perf_counter()
        with httpx.Client(timeout=10) as client:
            for pk, endpoint, person in bodies:
                client.post(
                    endpoint, json={"request_id": f"kordant-{pk}", **person}, headers={"Idempotency-Key": f"plain-{pk}"}
                ).raise_for_status()
        plain = time.perf_counter() - started
        print(
            f"   bare httpx.Client.post loop, the same {len(bodies)} posts: {plain:.1f} s = "
            f"{len(bodies) / plain:.0f} requests/s  (the pass runs at {plain / elapsed:.2f}x its speed)"
        )
    finally:
        stub.terminate()
        stub.wait(10)


def _busiest_minute() -> int:
    """The most submissions any one broker got within a sliding 60 s, from the recorded submission times."""
    times: dict[int, list[float]] = {}
    for broker_id, at in RemovalRequest.objects.filter(status="submitted").values_list("broker_id", "submitted_at"):
        times.setdefault(broker_id, []).append(at.timestamp())
    busiest = 0
    for stamps in times.values():
        stamps.sort()
        start = 0
        for end, stamp in enumerate(stamps):
            while stamp - stamps[start] >= 60:
                start += 1
            busiest = max(busiest, end - start + 1)
    return busiest


def _setup(base: str) -> list[DataBroker]:
    RemovalRequest.objects.all().delete()
    DataBroker.objects.filter(name__startswith="Bench broker").delete()
    brokers = [
        DataBroker.objects.create(
            name=f"Bench broker {n:02}",
            method="api",
            endpoint=f"{base}/bench{n:02}/optout",
            search_url=f"{base}/bench{n:02}/search",
            required_fields=["full_name", "email"],
            rate_limit_per_minute=RATE_LIMIT,
        )
        for n in range(BROKERS)
    ]
    User = get_user_model()
    users = [User(username=f"bench-rb-{n}", email=f"bench-rb-{n}@example.com") for n in range(PER_BROKER)]
    User.objects.filter(username__startswith="bench-rb-").delete()
    User.objects.bulk_create(users, batch_size=1000)
    users = list(User.objects.filter(username__startswith="bench-rb-").order_by("pk"))
    Subscription.objects.bulk_create([Subscription(user=user) for user in users], batch_size=1000)
    subscriptions = list(Subscription.objects.filter(user__in=users).select_related("user"))
    bulk_insert(
        RemovalRequest,
        [
            RemovalRequest(
                subscription=subscription,
                broker=broker,
                person={"full_name": subscription.user.username, "email": subscription.user.email},
            )
            for subscription in subscriptions
            for broker in brokers
        ],
    )
    return brokers


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the broker stub did not start")
