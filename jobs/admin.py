"""A first, read-only view of runs for operators; the operator-console issue builds on it."""

from django.contrib import admin

from jobs.models import JobEvent, JobRun, Schedule, SchedulerConfig
from jobs.scheduling import schedule_set_enabled


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    can_delete = False
    fields = ("at", "status", "attempt", "worker", "message")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ("id", "job_type", "status", "attempt", "trigger", "queue", "created_at", "finished_at")
    list_filter = ("status", "job_type", "trigger", "queue")
    search_fields = ("=id", "job_type", "dedupe_key")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    show_full_result_count = False  # a COUNT(*) over millions of runs on every page is not worth it
    inlines = [JobEventInline]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in JobRun._meta.fields]

    def has_add_permission(self, request):
        return False  # runs are created by enqueue(), with validation, never by hand here


@admin.register(SchedulerConfig)
class SchedulerConfigAdmin(admin.ModelAdmin):
    """Operators edit the tier table here; saving re-syncs the tier (jobs/signals.py)."""

    list_display = ("tier", "job_type", "frequency", "cron_expression", "enabled", "overlap", "run_on_change")
    list_filter = ("tier", "enabled", "job_type")
    list_editable = ("enabled",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "subscription",
        "config",
        "cron_expression",
        "timezone",
        "enabled",
        "next_run_at",
        "last_run_at",
        "last_status",
        "run_count",
    )
    list_filter = ("enabled", "config__tier", "config__job_type", "last_status")
    list_select_related = ("subscription__user", "config")
    search_fields = ("=subscription__id", "subscription__user__username")
    raw_id_fields = ("subscription", "last_run")
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        # Timing comes from the config and the subscription; sync_schedules would undo a hand edit.
        return [field.name for field in Schedule._meta.fields if field.name != "enabled"]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        schedule_set_enabled(obj, obj.enabled)
