"""Reads for notifications: where a user can be reached, their timezone, quiet hours."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from kordant.models import Subscription
from notifications.models import Channel, NotificationPreference, WebhookEndpoint


@dataclass(frozen=True)
class Target:
    """One place a notification can go: a channel, its address and, for webhooks, the endpoint."""

    channel: str
    address: str
    preference: NotificationPreference | None = None
    endpoint: WebhookEndpoint | None = None


def user_timezone(user) -> zoneinfo.ZoneInfo:
    """The timezone of the user's first live subscription; UTC if they have none."""
    name = (
        Subscription.objects.filter(user=user)
        .exclude(status=Subscription.Status.CANCELLED)
        .order_by("created_at", "pk")
        .values_list("timezone", flat=True)
        .first()
    )
    return zoneinfo.ZoneInfo(name or "UTC")


def channel_address(user, channel: str, preference: NotificationPreference | None) -> str:
    """Where `channel` reaches the user ("" if nowhere): a preference's address, or the user's email."""
    if preference is not None and not preference.enabled:
        return ""
    if channel == Channel.EMAIL:
        return (preference.address if preference else "") or user.email or ""
    return preference.address if preference else ""


def user_targets(user, kind: str, channels: frozenset[str]) -> list[Target]:
    """Every enabled channel (and subscribed webhook endpoint) among `channels` that can reach the user."""
    preferences = {pref.channel: pref for pref in NotificationPreference.objects.filter(user=user)}
    targets = []
    for channel in (Channel.EMAIL, Channel.SMS, Channel.PUSH):
        if channel in channels:
            preference = preferences.get(channel)
            address = channel_address(user, channel, preference)
            if address:
                targets.append(Target(channel, address, preference))
    if Channel.WEBHOOK in channels:
        for endpoint in WebhookEndpoint.objects.filter(owner=user, active=True):
            if endpoint.wants(kind):
                targets.append(Target(Channel.WEBHOOK, endpoint.url, endpoint=endpoint))
    return targets


def quiet_hours_end(start: time, end: time, tz: zoneinfo.ZoneInfo, when: datetime) -> datetime | None:
    """If `when` falls in the daily quiet hours [start, end) local time, the instant they end; else None.

    A window may cross midnight (22:00-07:00). An end time that does not exist that day (the
    spring-forward gap) resolves to the instant after the gap, as zoneinfo's fold=0 does.
    """
    if start == end:
        return None
    local = when.astimezone(tz)
    now = local.time().replace(tzinfo=None)
    if start < end:
        inside, end_date = start <= now < end, local.date()
    else:
        inside = now >= start or now < end
        end_date = local.date() + timedelta(days=1) if now >= start else local.date()
    if not inside:
        return None
    # In UTC: a local time in the gap compares unequal to every instant until it is converted.
    return datetime.combine(end_date, end, tzinfo=tz).astimezone(UTC)
