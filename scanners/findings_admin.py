"""Admin actions DarkWatch alerts and HomeTitle title changes share."""

from django.contrib import admin

from scanners.findings import FindingStatus
from scanners.services import findings_set_status


@admin.action(description="Mark acknowledged")
def acknowledge(modeladmin, request, queryset):
    findings_set_status(queryset, FindingStatus.ACKNOWLEDGED)


@admin.action(description="Mark resolved")
def resolve(modeladmin, request, queryset):
    findings_set_status(queryset, FindingStatus.RESOLVED)
