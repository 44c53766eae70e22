"""What DarkWatch alerts and HomeTitle title changes share: how bad a finding is and where it stands."""

from django.db import models


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"
    INFO = "info", "Informational"


# Most severe first; notifications name the worst finding of a scan.
SEVERITY_ORDER = [choice.value for choice in Severity]


def most_severe(severities) -> str | None:
    """The most severe of `severities`, or None if there are none."""
    present = set(severities)
    return next((severity for severity in SEVERITY_ORDER if severity in present), None)


class FindingStatus(models.TextChoices):
    NEW = "new", "New"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class Finding(models.Model):
    """What a DarkWatch alert and a HomeTitle title change both are: a finding with a severity,
    a status the customer moves on, and when they were told of it."""

    Status = FindingStatus

    severity = models.CharField(max_length=16, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=FindingStatus.choices, default=FindingStatus.NEW)
    # Set when the subscriber was told; a scan that crashed before telling them is caught by the next.
    notified_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
