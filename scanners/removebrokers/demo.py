"""Demo data for `make run`: fictional brokers on the local stub, and requests moving through them."""

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


@transaction.atomic
def removebrokers_demo_ensure() -> str:
    """Create the demo brokers and one request per demo subscription and broker, unless they exist."""
    base = settings.REMOVEBROKERS_DEMO_URL.rstrip("/")
    made = []
    for name, method, target, fields, instructions in DEMO_BROKERS:
        api = method == DataBroker.Method.API
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
