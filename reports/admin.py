from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from jobs.operators import may_trigger_runs
from reports.models import Report
from reports.services import report_regenerate


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ("__str__", "subscription", "kind", "period_start", "period_end", "status", "page_count", "download")
    list_filter = ("kind", "status")
    search_fields = ("subscription__user__username", "subscription__user__email")
    list_select_related = ("subscription__user",)
    readonly_fields = (
        "subscription", "kind", "period_start", "period_end", "status", "download", "page_count", "size_bytes",
        "checksum", "generated_at", "error",
    )  # fmt: skip
    # The stored file is reached through the download view (it checks who asks), never MEDIA_URL.
    fields = readonly_fields
    actions = ["regenerate"]

    def has_add_permission(self, request):
        return False  # reports are made by the job; staff request one through report_request

    @admin.display(description="PDF")
    def download(self, report):
        if report.status != Report.Status.READY or not report.file:
            return "–"
        return format_html('<a href="{}">Download</a>', reverse("reports:download", args=[report.pk]))

    def has_trigger_permission(self, request) -> bool:
        return may_trigger_runs(request.user)  # what the API asks of anyone but the owner (may_request_report)

    @admin.action(description="Regenerate the selected reports", permissions=["trigger"])
    def regenerate(self, request, queryset):
        runs = []
        for report in queryset:
            runs.append(report_regenerate(report, user=request.user))
            self.log_change(request, report, "Regenerated from the admin.")
        self.message_user(request, f"Queued {len(runs)} report(s) for regeneration.", messages.SUCCESS)
