import base64
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from notifications.providers.push import PUSH_TOKEN
from notifications.providers.sms import E164
from notifications.signatures import STANDARD_SECRET_PREFIX, SignatureScheme, standard_secret_key
from scanners.fields import EncryptedTextField


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"
    WEBHOOK = "webhook", "Webhook"


def new_webhook_secret() -> str:
    # Standard Webhooks' form (whsec_ + base64 of 32 random bytes): it signs `standard` endpoints,
    # and as a plain string it is as good a key for `legacy` ones.
    return STANDARD_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class Notification(models.Model):
    """One message to one user on one channel (and, for webhooks, one endpoint)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"  # waiting for its send job (until send_at, or for the event before it)
        SENDING = "sending", "Sending"  # an attempt claimed it and is talking to the provider
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SUPPRESSED = "suppressed", "Suppressed"  # deliberately not sent (rate limit, disabled endpoint); see reason
        CANCELLED = "cancelled", "Cancelled"  # a reminder cancelled before it was due

    FINAL_STATUSES = (Status.SENT, Status.FAILED, Status.SUPPRESSED, Status.CANCELLED)

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    kind = models.CharField(max_length=64)
    context = models.JSONField(default=dict, help_text="The kind's validated template context.")
    webhook_endpoint = models.ForeignKey(
        "notifications.WebhookEndpoint", null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=300, blank=True, help_text="Why it was suppressed, cancelled or failed.")
    error = models.TextField(blank=True, help_text="The last attempt's error.")
    attempts = models.PositiveSmallIntegerField(default=0)
    address = models.CharField(max_length=500, blank=True, help_text="Where the last attempt sent it.")
    provider_message_id = models.CharField(max_length=200, blank=True)
    # NULL, not "", for "no key": NULLs never collide in the unique constraints below.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    send_at = models.DateTimeField(null=True, blank=True, help_text="Not before this time (reminders, quiet hours).")
    # Resource events only ("alert:42"): an endpoint gets the events of one sequence one at a time, in
    # order (notifications/events.py). NULL for everything else, which is sent as soon as it is due.
    sequence_key = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    job_run = models.ForeignKey("jobs.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When the last attempt started sending.")
    claimed_by = models.CharField(max_length=100, blank=True, help_text="The job run and attempt that claimed it.")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["recipient", "channel", "claimed_at"]),  # the SMS rate limit's count
            models.Index(fields=["status", "send_at"]),
            # An event's predecessors in its sequence, and the next one to send.
            models.Index(fields=["webhook_endpoint", "sequence_key"], name="notification_sequence_idx"),
        ]
        constraints = [
            # The same dedupe key never makes a second notification for the same person and channel...
            models.UniqueConstraint(
                fields=["recipient", "channel", "dedupe_key"],
                condition=Q(dedupe_key__isnull=False, webhook_endpoint__isnull=True),
                name="notification_unique_dedupe_key",
            ),
            # ...or for the same webhook endpoint.
            models.UniqueConstraint(
                fields=["webhook_endpoint", "dedupe_key"],
                condition=Q(dedupe_key__isnull=False, webhook_endpoint__isnull=False),
                name="notification_unique_endpoint_dedupe_key",
            ),
            models.CheckConstraint(
                condition=Q(channel="webhook", webhook_endpoint__isnull=False)
                | (~Q(channel="webhook") & Q(webhook_endpoint__isnull=True)),
                name="notification_endpoint_iff_webhook",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.channel} to {self.recipient} ({self.status})"


class NotificationPreference(models.Model):
    """A user's choice for one channel: on or off, quiet hours, and the channel's address."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    enabled = models.BooleanField(default=True)
    address = models.CharField(
        max_length=200,
        blank=True,
        help_text="SMS: an E.164 number (+14155550100). Push: an Expo push token. Email: blank uses the user's email.",
    )
    quiet_hours_start = models.TimeField(null=True, blank=True, help_text="Local time in the user's timezone.")
    quiet_hours_end = models.TimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "channel"], name="notification_preference_unique")]

    def __str__(self) -> str:
        return f"{self.user} · {self.channel} ({'on' if self.enabled else 'off'})"

    def clean(self) -> None:
        if self.channel == Channel.SMS and self.address and not E164.fullmatch(self.address):
            raise ValidationError({"address": "An SMS address must be an E.164 number like +14155550100."})
        if self.channel == Channel.PUSH and self.address and not PUSH_TOKEN.fullmatch(self.address):
            raise ValidationError({"address": "A push address must be an Expo push token like ExponentPushToken[...]."})
        if self.channel == Channel.WEBHOOK:
            raise ValidationError({"channel": "Webhooks are configured as endpoints, not preferences."})
        if (self.quiet_hours_start is None) != (self.quiet_hours_end is None):
            raise ValidationError("Give both ends of the quiet hours, or neither.")


class WebhookEndpoint(models.Model):
    """A URL of a customer's that receives signed events of the kinds it subscribes to."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    # Encrypted at rest (scanners/fields.py); `endpoint.secret` reads as the plaintext that signs deliveries.
    secret = EncryptedTextField(default=new_webhook_secret)
    # Chosen when the endpoint is made; endpoints older than the choice are `legacy` (migration 0003).
    signature_scheme = models.CharField(
        max_length=32,
        choices=SignatureScheme.choices,
        default=SignatureScheme.STANDARD,
        help_text="How deliveries are signed; the receiver must verify this scheme. See the README.",
    )
    kinds = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            "Event kinds to send; empty means every notification kind. Job and resource events"
            " (job.completed, alert.created, alert.*, ...) are sent only when listed here."
        ),
    )
    job_types = models.JSONField(
        default=list,
        blank=True,
        help_text="Job events only for these job types (darkwatch.scan, ...); empty: all.",
    )
    active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["owner_id", "pk"]

    def __str__(self) -> str:
        return self.url

    def wants(self, kind: str) -> bool:
        return not self.kinds or kind in self.kinds

    def clean(self) -> None:
        from jobs.registry import registry
        from notifications.kinds import EVENT_KINDS, KINDS

        errors = {}
        if self.signature_scheme == SignatureScheme.STANDARD:
            try:
                standard_secret_key(self.secret)
            except ValueError as exc:
                # A secret from before Standard Webhooks (whsec_ + URL-safe text) cannot sign `standard`.
                errors["signature_scheme"] = f"this endpoint's secret cannot sign it: {exc}"
        prefixes = {name.partition(".")[0] for name in EVENT_KINDS}
        kinds = self.kinds if isinstance(self.kinds, list) else [self.kinds]
        unknown = [
            kind
            for kind in kinds
            if not isinstance(kind, str) or not (kind in KINDS or (kind.endswith(".*") and kind[:-2] in prefixes))
        ]
        if unknown:
            errors["kinds"] = f"Unknown kinds {unknown!r}: use notification kinds, event names or <prefix>.*"
        job_types = self.job_types if isinstance(self.job_types, list) else [self.job_types]
        unknown = [name for name in job_types if not isinstance(name, str) or name not in registry]
        if unknown:
            errors["job_types"] = f"Unknown job types {unknown!r}."
        if errors:
            raise ValidationError(errors)

    def subscribes(self, event: str) -> bool:
        """Whether this endpoint asked for a job or resource event by name or by `<prefix>.*`."""
        return event_subscribed(self.kinds, event)


def event_subscribed(kinds, event: str) -> bool:
    """Job and resource events are opt-in: named exactly, or by their prefix (`job.*`, `alert.*`)."""
    # Never implied by an empty list: receivers written for notifications must not get new shapes unasked.
    return event in kinds or f"{event.partition('.')[0]}.*" in kinds


class WebhookDelivery(models.Model):
    """One attempt to deliver a webhook notification, whatever its outcome."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="webhook_deliveries")
    attempt = models.PositiveSmallIntegerField()
    succeeded = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    # The request as it went out, so staff and the owner can see (and a receiver reproduce) it.
    url = models.CharField(max_length=500, blank=True)
    request_headers = models.JSONField(default=dict, blank=True)
    request_body = models.TextField(blank=True, help_text="The exact bytes signed and sent (UTF-8 JSON).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["endpoint", "-created_at"])]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["notification", "attempt"], name="webhook_delivery_unique_attempt")
        ]

    def __str__(self) -> str:
        return f"{self.notification_id} attempt {self.attempt}: {self.status_code or self.error[:40]}"
