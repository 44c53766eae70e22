"""Demo data for `make run`: fictional brokers on the local stub, and requests moving through them."""

import time

import httpx
from django.conf import settings
from django.db import transaction

from kordant.models import Subscription
from scanners.removebrokers.models import DataBroker, RemovalRequest
from scanners.removebrokers.services import removal_requests_create

# (name, method, path on the stub or address, required fields, instructions)
DEMO_BROKERS = [
    ("FindThem Fast", DataBroker.Method.API, "findthemfast", ["full_name", "email"], ""),
    ("Public Record Pages", DataBroker.Method.API, "publicrecordpages", ["full_name", "email", "postal_address"], ""),
    ("Mailbox Data Co", DataBroker.Method.EMAIL, "privacy@mailbox-data.example", ["full_name", "email"], ""),
    (
        "Paper Pages Directory",
        DataBroker.Method.MANUAL,
        "https://paperpages.example/optout",
        [],
        "Search for yourself on their site, choose 'Remove my listing' and confirm the email they send.",
    ),
]


class DemoBrokersUnreachable(RuntimeError):
    """The stub never said where it listens, or does not answer there."""


def demo_brokers_url(*, wait_seconds: float = 30.0) -> str:
    """REMOVEBROKERS_DEMO_URL, else the URL the stub wrote (it takes a free port), once it answers.

    `make run` starts the stub beside the command that needs it: wait for the file, and for the
    URL in it to answer, since a file left by a stub that was killed names a port nobody serves.
    """
    if settings.REMOVEBROKERS_DEMO_URL:
        return settings.REMOVEBROKERS_DEMO_URL.rstrip("/")
    path = settings.REMOVEBROKERS_DEMO_URL_FILE
    deadline = time.monotonic() + wait_seconds
    while True:
        url = path.read_text().strip() if path.exists() else ""
        if url:
            try:
                httpx.get(f"{url}/demo/search", timeout=2)
                return url.rstrip("/")
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise DemoBrokersUnreachable(f"the demo brokers' stub wrote no live URL to {path} in {wait_seconds:.0f} s")
        time.sleep(0.2)


def removebrokers_demo_ensure(base: str | None = None) -> str:
    """Create the demo brokers (pointed at the stub as it runs now) and one request per demo subscription and broker."""
    base = (base or demo_brokers_url()).rstrip("/")
    return _demo_ensure(base)


@transaction.atomic
def _demo_ensure(base: str) -> str:
    made = []
    for name, method, target, fields, instructions in DEMO_BROKERS:
        api = method == DataBroker.Method.API
        if api:  # the stub has a new port each start: follow it
            DataBroker.objects.filter(name=name, method=method).exclude(endpoint=f"{base}/{target}/optout").update(
                endpoint=f"{base}/{target}/optout", search_url=f"{base}/{target}/search"
            )
        _, created = DataBroker.objects.get_or_create(
            name=name,
            defaults={
                "method": method,
                "endpoint": f"{base}/{target}/optout" if api else target,
                "search_url": f"{base}/{target}/search" if api else "",
                "required_fields": fields,
                "instructions": instructions,
                "rate_limit_per_minute": 30,
                # Re-check on the next pass, so the demo reaches "confirmed" within a minute.
                "recheck_after_days": 0,
            },
        )
        if created:
            made.append(name)
    filed = 0
    for subscription in Subscription.objects.filter(user__username__startswith="demo-").select_related("user"):
        if RemovalRequest.objects.filter(subscription=subscription).exists():
            continue
        username = subscription.user.username
        person = {
            "full_name": username.replace("-", " ").title(),
            "email": subscription.user.email or f"{username}@example.com",
            "postal_address": "1 Demo Street, Springfield",
        }
        filed += len(removal_requests_create(subscription, person))
    if not made and not filed:
        return "RemoveBrokers demo: already there."
    return f"RemoveBrokers demo: brokers {', '.join(made) or '(existing)'}; {filed} removal requests filed."
