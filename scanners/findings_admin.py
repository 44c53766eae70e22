"""Admin actions DarkWatch alerts and HomeTitle title changes share.

They ask the model's change permission, as the API's acknowledge and resolve do for anyone
but the finding's owner (jobs.operators.may_change_others), and write the admin log."""

from django.contrib import admin

from scanners.findings import FindingStatus
from scanners.services import findings_set_status


def _set_status(modeladmin, request, queryset, status: str) -> None:
    findings = list(queryset)
    findings_set_status(queryset, status)
    for finding in findings:
        modeladmin.log_change(request, finding, f"Marked {status} from the admin.")


@admin.action(description="Mark acknowledged", permissions=["change"])
def acknowledge(modeladmin, request, queryset):
    _set_status(modeladmin, request, queryset, FindingStatus.ACKNOWLEDGED)


@admin.action(description="Mark resolved", permissions=["change"])
def resolve(modeladmin, request, queryset):
    _set_status(modeladmin, request, queryset, FindingStatus.RESOLVED)
