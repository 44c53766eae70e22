"""RemoveBrokers: the data brokers we file opt-outs with, and one removal request per subscription and broker."""

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q

from scanners.fields import EncryptedJSONField

__all__ = ["DataBroker", "RemovalRequest"]

# Person fields a broker may ask for; a request carries the ones its broker needs.
PERSON_FIELDS = ("full_name", "email", "phone", "postal_address", "date_of_birth")


class DataBroker(models.Model):
    """A people-search or data broker site and how it takes opt-out requests."""

    class Method(models.TextChoices):
        API = "api", "Web form / API"
        EMAIL = "email", "Email"
        MANUAL = "manual", "Manual (the customer acts)"

    name = models.CharField(max_length=120, unique=True)
    method = models.CharField(max_length=16, choices=Method.choices)
    # API: the URL the opt-out is POSTed to. Email: the address the opt-out is mailed to.
    # Manual: the page the customer is sent to.
    endpoint = models.CharField(max_length=500)
    required_fields = models.JSONField(default=list, blank=True, help_text=f"Any of: {', '.join(PERSON_FIELDS)}")
    # GET <search_url>?full_name=...&email=... answers {"listed": true|false}; empty means no re-check.
    search_url = models.CharField(max_length=500, blank=True, validators=[URLValidator(schemes=["http", "https"])])
    rate_limit_per_minute = models.PositiveIntegerField(default=60)
    # Days after a submission before the search endpoint is asked again; empty: REMOVEBROKERS_RECHECK_DAYS.
    recheck_after_days = models.PositiveIntegerField(null=True, blank=True)
    instructions = models.TextField(blank=True, help_text="What the customer does, for manual brokers")
    active = models.BooleanField(default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(rate_limit_per_minute__gt=0), name="databroker_rate_limit_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def recheck_days(self) -> int:
        """Days from a submission to its re-check: this broker's own, else REMOVEBROKERS_RECHECK_DAYS."""
        return self.recheck_after_days if self.recheck_after_days is not None else settings.REMOVEBROKERS_RECHECK_DAYS


class RemovalRequest(models.Model):
    """One opt-out of one subscription's person from one broker, from filing to confirmation."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUBMITTED = "submitted", "Submitted"
        CONFIRMED = "confirmed", "Confirmed"
        NEEDS_USER_ACTION = "needs_user_action", "Needs user action"
        FAILED = "failed", "Failed"

    # While a request is open no second one may exist for the same subscription and broker.
    OPEN_STATUSES = (Status.PENDING, Status.SUBMITTED, Status.NEEDS_USER_ACTION)

    subscription = models.ForeignKey("kordant.Subscription", on_delete=models.CASCADE, related_name="removal_requests")
    broker = models.ForeignKey(DataBroker, on_delete=models.PROTECT, related_name="removal_requests")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # Name, e-mail, phone, address, date of birth: encrypted at rest (scanners/fields.py).
    person = EncryptedJSONField(default=dict, help_text="The fields sent to the broker")
    attempts = models.PositiveIntegerField(default=0, help_text="Submission attempts, failed ones included")
    submissions = models.PositiveIntegerField(default=0, help_text="Submissions the broker accepted")
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="Pending: not before; submitted: re-check")
    # A worker that claimed the request owns it until then; a crashed worker's claim runs out.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    rechecked_at = models.DateTimeField(null=True, blank=True)
    broker_reference = models.CharField(max_length=200, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "broker"],
                condition=Q(status__in=["pending", "submitted", "needs_user_action"]),
                name="removalrequest_one_open_per_broker",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="removalrequest_due"),
            models.Index(fields=["claim_token"], name="removalrequest_claim"),
        ]

    def __str__(self) -> str:
        return f"{self.broker} for subscription {self.subscription_id} ({self.status})"
