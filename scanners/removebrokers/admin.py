from django.contrib import admin
from django.utils.html import format_html_join

from scanners.darkwatch.identifiers import mask
from scanners.removebrokers.models import DataBroker, RemovalRequest
from scanners.removebrokers.services import (
    removal_requests_mark_done_by_user,
    removal_requests_process_soon,
    removal_requests_retry,
)


@admin.register(DataBroker)
class DataBrokerAdmin(admin.ModelAdmin):
    list_display = ("name", "method", "endpoint", "rate_limit_per_minute", "recheck_after_days", "active")
    list_filter = ("method", "active")
    search_fields = ("name", "endpoint")
    list_editable = ("active",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(RemovalRequest)
class RemovalRequestAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "subscription",
        "broker",
        "status",
        "attempts",
        "submissions",
        "submitted_at",
        "next_attempt_at",
        "confirmed_at",
        "broker_reference",
    )
    list_filter = ("status", "broker__method", "broker")
    search_fields = ("=id", "broker__name", "broker_reference", "subscription__user__email", "last_error")
    list_select_related = ("subscription__user", "broker")
    date_hierarchy = "created_at"
    actions = ["retry", "mark_done_by_user", "process_now"]

    # The person's details (name, address, birth date...) are shown masked, never whole:
    # staff screens get shared, and the broker already has them.
    exclude = ("person",)

    def get_readonly_fields(self, request, obj=None):
        # Status moves only through the engine and the actions, which keep the invariants.
        return ["person_masked", *(field.name for field in RemovalRequest._meta.fields if field.name != "person")]

    @admin.display(description="person")
    def person_masked(self, request_row):
        def hidden(key, value):
            text = str(value)
            if key == "email" and "@" in text:
                return mask("email", text)
            return mask("username", text) if len(text) > 2 else "***"

        return format_html_join(
            "", "<div>{}: {}</div>", ((key, hidden(key, value)) for key, value in sorted(request_row.person.items()))
        )

    @admin.action(description="Send round again from scratch (failed or needs user action)")
    def retry(self, request, queryset):
        self.message_user(request, f"{removal_requests_retry(queryset)} request(s) sent round again.")

    @admin.action(description="The customer opted out themselves (needs user action → submitted)")
    def mark_done_by_user(self, request, queryset):
        self.message_user(request, f"{removal_requests_mark_done_by_user(queryset)} request(s) marked submitted.")

    @admin.action(description="Run a processing pass now")
    def process_now(self, request, queryset):
        self.message_user(request, f"Processing pass queued: {removal_requests_process_soon().pk}.")
