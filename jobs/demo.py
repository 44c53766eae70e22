"""Demo data for `make run`: something to look at in the admin within a minute of starting."""

from django.contrib.auth import get_user_model
from django.db import transaction

from jobs.models import SchedulerConfig
from kordant.models import Subscription

DEMO_SUBSCRIBERS = [
    ("demo-basic", Subscription.Tier.BASIC, "America/New_York"),
    ("demo-plus", Subscription.Tier.PLUS, "Europe/London"),
    ("demo-premium", Subscription.Tier.PREMIUM, "Asia/Tokyo"),
    ("demo-premium-2", Subscription.Tier.PREMIUM, "UTC"),
]


@transaction.atomic
def demo_data_ensure() -> str:
    """Create the demo subscribers and the every-minute ping, unless they exist; say what was made."""
    User = get_user_model()
    made = []
    # A real job type on a one-minute cron: the scheduler visibly fires within a minute of start.
    _, created = SchedulerConfig.objects.get_or_create(
        tier=Subscription.Tier.PREMIUM,
        job_type="jobs.ping",
        defaults={"cron_expression": "* * * * *", "description": "Demo: a ping every minute"},
    )
    if created:
        made.append("Premium ping config (every minute)")
    for username, tier, tz in DEMO_SUBSCRIBERS:
        user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        if not user.subscriptions.exists():
            Subscription.objects.create(user=user, tier=tier, timezone=tz)
            made.append(f"{username} ({tier}, {tz})")
    return f"Demo data: created {', '.join(made)}." if made else "Demo data: already there."
