from django.db import models

from kordant.models import Subscription
from scanners.darkwatch import identifiers
from scanners.findings import Finding, Severity

__all__ = ["Alert", "Breach", "BreachRecord", "Watchlist", "WatchlistItem"]


class ItemKind(models.TextChoices):
    EMAIL = "email", "Email address"
    PHONE = "phone", "Phone number"
    USERNAME = "username", "Username"
    DOMAIN = "domain", "Domain"


class Watchlist(models.Model):
    """A named group of identifiers a subscription watches ("Personal", "Family", ...)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="watchlists")
    name = models.CharField(max_length=100, default="Personal")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscription", "name"], name="watchlist_unique_name")]

    def __str__(self):
        return f"{self.name} (subscription {self.subscription_id})"


class WatchlistItem(models.Model):
    """One watched identifier. The raw value is never stored: see scanners/darkwatch/identifiers.py."""

    Kind = ItemKind

    watchlist = models.ForeignKey(Watchlist, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=16, choices=ItemKind.choices)
    label = models.CharField(max_length=100, blank=True)
    value_encrypted = models.TextField(editable=False)
    value_hash = models.BinaryField(max_length=32, editable=False)
    masked = models.CharField(max_length=120, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_scanned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["watchlist", "value_hash"], name="watchlistitem_unique_value"),
        ]
        indexes = [models.Index(fields=["watchlist", "active"])]

    def __str__(self):
        return f"{self.get_kind_display()} {self.masked}"

    def set_value(self, raw: str) -> None:
        """Normalize, encrypt, hash and mask `raw`; IdentifierInvalid if it is not a valid identifier."""
        identifier = identifiers.normalize(self.kind, raw)
        self.value_encrypted = identifiers.encrypt(identifier.value)
        self.value_hash = identifier.digest
        self.masked = identifier.masked

    @property
    def value(self) -> str:
        """The normalized identifier, decrypted."""
        return identifiers.decrypt(self.value_encrypted)


class Breach(models.Model):
    """A known breach, from the local corpus or an outside source; unique per source and name."""

    source = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    title = models.CharField(max_length=200, blank=True)
    domain = models.CharField(max_length=200, blank=True)
    breach_date = models.DateField(null=True, blank=True)
    data_classes = models.JSONField(default=list, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.MEDIUM)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "name"], name="breach_unique_source_name")]

    def __str__(self):
        return self.title or self.name


class BreachRecord(models.Model):
    """One identifier seen in a breach, as its keyed hash only.

    The corpus holds millions of these, so each row carries one index only: the primary
    key (hash, breach), which is both what makes a record unique and what a scan looks up
    (`identifier_hash IN (...)`). No surrogate id, no index on breach: deleting a breach
    scans the table, which is rare; importing a million records is not.
    """

    pk = models.CompositePrimaryKey("identifier_hash", "breach")
    identifier_hash = models.BinaryField(max_length=32)
    breach = models.ForeignKey(Breach, on_delete=models.CASCADE, related_name="records", db_index=False)
    kind = models.CharField(max_length=16, choices=ItemKind.choices)

    def __str__(self):
        return f"{self.get_kind_display()} in breach {self.breach_id}"


class Alert(Finding):
    """A watched item found in a breach; one per item and breach, however often it is scanned."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="darkwatch_alerts")
    item = models.ForeignKey(WatchlistItem, on_delete=models.CASCADE, related_name="alerts")
    breach = models.ForeignKey(Breach, on_delete=models.CASCADE, related_name="alerts")
    first_seen = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "breach"], name="alert_unique_item_breach")]
        indexes = [models.Index(fields=["subscription", "notified_at"])]

    def __str__(self):
        return f"{self.item} in {self.breach}"
