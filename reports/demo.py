"""Demo data for `make run`: one on-demand report per demo subscriber, over the last 30 days.

It is queued after the scanner demo's first scans; reports use the `low` queue and the
worker takes `default` first, so the scans' alerts and title changes are in the report.
"""

from datetime import timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from kordant.models import Subscription
from reports.models import Report
from reports.services import report_request

DEMO_USERNAMES = ("demo-plus", "demo-premium")
PERIOD_DAYS = 30


def report_demo_ensure() -> str:
    """Ask for each demo subscriber's last-30-days report, unless they already have one; say what was asked."""
    asked = []
    for subscription in Subscription.objects.filter(user__username__in=DEMO_USERNAMES).select_related("user"):
        if Report.objects.filter(subscription=subscription).exists():
            continue
        today = timezone.localdate(timezone=ZoneInfo(subscription.timezone))
        report_request(subscription, "on_demand", today - timedelta(days=PERIOD_DAYS - 1), today)
        asked.append(subscription.user.username)
    return f"Report demo: queued a 30-day report for {', '.join(asked)}." if asked else "Report demo: already there."
