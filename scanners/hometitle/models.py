from django.core.validators import MaxLengthValidator
from django.db import models

from kordant.models import Subscription
from scanners.fields import EncryptedTextField
from scanners.findings import Finding

__all__ = ["Property", "RecordedDocument", "TitleChange"]


def parcel_key(county: str, parcel_number: str) -> str:
    """How a parcel is matched across sources: county and parcel number, case and separators ignored."""
    clean = "".join(ch for ch in parcel_number.upper() if ch.isalnum())
    return f"{county.strip().lower()}:{clean}"


class Property(models.Model):
    """A property a subscription watches, identified by county and parcel number."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="properties")
    address = models.CharField(max_length=300)
    county = models.CharField(max_length=100, help_text="County identifier as the recorder data names it")
    parcel_number = models.CharField(max_length=64)
    parcel_key = models.CharField(max_length=170, editable=False, db_index=True)
    # Personal names: encrypted at rest (scanners/fields.py); max_length bounds the form, not the column.
    owner_names = EncryptedTextField(
        max_length=300,
        validators=[MaxLengthValidator(300)],
        help_text="Owners on title, separated by ';' — a deed to anyone else is critical",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_scanned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "properties"
        constraints = [
            models.UniqueConstraint(fields=["subscription", "parcel_key"], name="property_unique_parcel"),
        ]

    def __str__(self):
        return self.address

    def save(self, *args, **kwargs):
        self.parcel_key = parcel_key(self.county, self.parcel_number)
        if kwargs.get("update_fields") is not None and {"county", "parcel_number"} & set(kwargs["update_fields"]):
            kwargs["update_fields"] = {*kwargs["update_fields"], "parcel_key"}
        super().save(*args, **kwargs)


class DocumentType(models.TextChoices):
    DEED = "deed", "Deed"
    QUITCLAIM = "quitclaim_deed", "Quitclaim deed"
    MORTGAGE = "mortgage", "Mortgage"
    LIEN = "lien", "Lien"
    RELEASE = "release", "Release"
    OTHER = "other", "Other"


class RecordedDocument(models.Model):
    """A document recorded against a parcel, as the county publishes it; unique per county and number.

    It belongs to the parcel, not to a watched property: two subscriptions may watch one
    parcel, and the recorder data holds parcels nobody watches. `TitleChange` links the two.
    """

    Type = DocumentType

    county = models.CharField(max_length=100)
    document_number = models.CharField(max_length=64)
    parcel_number = models.CharField(max_length=64)
    parcel_key = models.CharField(max_length=170)
    document_type = models.CharField(max_length=16, choices=DocumentType.choices)
    recorded_date = models.DateField()
    grantor = models.CharField(max_length=300, blank=True)
    grantee = models.CharField(max_length=300, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    source = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["county", "document_number"], name="recordeddocument_unique_number"),
        ]
        indexes = [models.Index(fields=["parcel_key", "recorded_date"])]

    def __str__(self):
        return f"{self.get_document_type_display()} {self.document_number} ({self.county})"


class TitleChange(Finding):
    """A new document on a watched property; one per property and document, however often it is scanned."""

    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="title_changes")
    document = models.ForeignKey(RecordedDocument, on_delete=models.CASCADE, related_name="title_changes")
    detected_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["property", "document"], name="titlechange_unique_property_document"),
        ]

    def __str__(self):
        return f"{self.document} on {self.property}"
