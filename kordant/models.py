import zoneinfo
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


@cache
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    if value not in _known_timezones():
        raise ValidationError(
            "%(value)s is not a known IANA timezone.", code="unknown_timezone", params={"value": value}
        )


class Subscription(models.Model):
    """A customer's plan: its tier decides which recurring jobs run for it."""

    class Tier(models.TextChoices):
        BASIC = "basic", "Basic"
        PLUS = "plus", "Plus"
        PREMIUM = "premium", "Premium"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELLED = "cancelled", "Cancelled"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriptions")
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.BASIC)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tier", "status"])]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_tier_display()} ({self.get_status_display()})"

    def save(self, *args, **kwargs):
        # A row with an unknown zone would break every schedule computed from it, so the
        # model refuses it even when the caller skipped form validation.
        validate_timezone(self.timezone)
        super().save(*args, **kwargs)
