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
