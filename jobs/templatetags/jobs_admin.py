"""The console's template tags: the banner every admin page shows while scheduling is paused."""

from __future__ import annotations

from datetime import UTC

from django import template
from django.urls import reverse

from jobs import selectors
from jobs.operators import is_staff_account

register = template.Library()


@register.inclusion_tag("admin/jobs/scheduling_banner.html", takes_context=True)
def scheduling_banner(context) -> dict:
    """While scheduling is paused: who paused it, when and why, for anyone who sees the jobs (one query)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if not (is_staff_account(user) and user.has_module_perms("jobs")):
        return {"switch": None}
    switch = selectors.scheduling_switch_get()
    if not switch.paused:
        return {"switch": None}
    since = f"{switch.changed_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if switch.changed_at else "some time"
    return {"switch": switch, "since": since, "scheduling_url": reverse("admin:jobs_scheduling")}
