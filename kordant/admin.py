from django.contrib import admin

from jobs.models import Schedule
from kordant.models import Subscription


class ScheduleInline(admin.TabularInline):
    """The recurring runs the tier gives this subscription (made by the sync after a save)."""

    model = Schedule
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("config", "cron_expression", "timezone", "enabled", "next_run_at", "last_run_at", "last_status")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("config")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "tier", "status", "timezone", "created_at", "updated_at")
    list_filter = ("tier", "status")
    search_fields = ("user__username", "user__email")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = ("created_at", "updated_at")
    inlines = [ScheduleInline]
