"""A first, read-only view of runs for operators; the operator-console issue builds on it."""

from django.contrib import admin

from jobs.models import JobEvent, JobRun


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
