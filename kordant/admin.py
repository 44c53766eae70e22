from django.contrib import admin

from jobs.admin import PLAIN_ROWS_CSS, status_badge, time_cell
from jobs.cron import get_zone
from jobs.models import Schedule
from kordant.models import Subscription

# The console must fit a 1366 px screen: the app list beside every page took a quarter of it.
# The index and the breadcrumbs still lead everywhere.
admin.site.enable_nav_sidebar = False


class ScheduleInline(admin.TabularInline):
    """The recurring runs the tier gives this subscription (made by the sync after a save)."""

    model = Schedule
    extra = 0
    can_delete = False
    show_change_link = True
    classes = ("kj-plain-rows",)
    fields = ("config", "cron_expression", "timezone", "enabled", "next_run", "next_run_utc", "last_run", "outcome")
    readonly_fields = fields

    class Media:
        css = PLAIN_ROWS_CSS

    @admin.display(description="next run (subscriber's time)")
    def next_run(self, schedule):
        return time_cell(schedule.next_run_at, get_zone(schedule.timezone))

    @admin.display(description="next run (UTC)")
    def next_run_utc(self, schedule):
        return time_cell(schedule.next_run_at)

    @admin.display(description="last run (UTC)")
    def last_run(self, schedule):
        return time_cell(schedule.last_run_at)

    @admin.display(description="last outcome")
    def outcome(self, schedule):
        return status_badge(schedule.last_status)

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
