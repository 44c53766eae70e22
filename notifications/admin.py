"""Staff views of notifications, preferences and webhook endpoints; actions call one service each."""

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import timezone

from notifications.models import Notification, NotificationPreference, WebhookDelivery, WebhookEndpoint
from notifications.services import (
    notifications_cancel,
    webhook_endpoints_enable,
    webhook_endpoints_replay_failed,
    webhook_events_replay,
)


def events_of_deliveries(deliveries):
    return Notification.objects.filter(pk__in=deliveries.values("notification_id"))


def mask(secret: str) -> str:
    """Enough of a secret to tell two apart, not enough to use one."""
    return f"{secret[:6]}…{secret[-4:]}" if len(secret) > 16 else "…"


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    can_delete = False
    fields = (
        "attempt",
        "succeeded",
        "status_code",
        "duration_ms",
        "error",
        "response_excerpt",
        "request_headers",
        "request_body",
        "created_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "recipient", "channel", "kind", "status", "attempts", "send_at", "sent_at", "created_at")
    list_filter = ("status", "channel", "kind")
    search_fields = ("=id", "recipient__username", "recipient__email", "=dedupe_key", "=provider_message_id")
    date_hierarchy = "created_at"
    list_select_related = ("recipient",)
    raw_id_fields = ("recipient", "webhook_endpoint", "job_run")
    show_full_result_count = False
    actions = ["cancel", "replay"]
    inlines = [WebhookDeliveryInline]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Notification._meta.fields]

    def has_add_permission(self, request):
        return False  # notifications are made by notify(), which validates and queues them

    @admin.action(description="Cancel selected reminders (those not sent yet)")
    def cancel(self, request, queryset):
        self.message_user(request, f"{notifications_cancel(queryset)} notification(s) cancelled.")

    @admin.action(description="Send selected webhook events again (same event id)", permissions=["change"])
    def replay(self, request, queryset):
        self.message_user(request, f"{webhook_events_replay(queryset)} webhook event(s) queued again.")


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "channel", "enabled", "address", "quiet_hours_start", "quiet_hours_end", "updated_at")
    list_filter = ("channel", "enabled")
    search_fields = ("user__username", "user__email", "=address")
    list_select_related = ("user",)
    raw_id_fields = ("user",)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "owner",
        "url",
        "signature_scheme",
        "active",
        "consecutive_failures",
        "disabled_at",
        "masked_secret",
    )
    list_filter = ("active", "signature_scheme")
    search_fields = ("url", "owner__username", "owner__email")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    # The secret is generated on creation and never shown whole: staff screens get shared.
    exclude = ("secret",)
    readonly_fields = ("masked_secret", "consecutive_failures", "disabled_at", "disabled_reason", "created_at")
    actions = ["reenable", "replay_failed"]

    def get_readonly_fields(self, request, obj=None):
        # Chosen on creation only: switching an existing endpoint's scheme would break its receiver
        # at once (a legacy secret cannot even sign `standard`). Make a new endpoint instead.
        return self.readonly_fields + (("signature_scheme",) if obj is not None else ())

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "url":
            kwargs["assume_scheme"] = "https"  # a URL typed without a scheme is meant to be https
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="secret")
    def masked_secret(self, obj):
        return mask(obj.secret)

    @admin.action(description="Re-enable selected endpoints (resets the failure count)")
    def reenable(self, request, queryset):
        self.message_user(request, f"{webhook_endpoints_enable(queryset)} endpoint(s) re-enabled.")

    @admin.action(description="Replay failed events since a time…", permissions=["change"])
    def replay_failed(self, request, queryset):
        # Django's intermediate-page pattern: the first POST shows the form, the second replays.
        form = ReplayFailedForm(request.POST if "post" in request.POST else None)
        if form.is_valid():
            replayed = webhook_endpoints_replay_failed(queryset, form.cleaned_data["since"])
            return self.message_user(request, f"{replayed} failed event(s) queued again.")
        context = {**self.admin_site.each_context(request), "title": "Replay failed events", "form": form}
        return TemplateResponse(
            request, "admin/notifications/replay_failed.html", {**context, "endpoints": list(queryset)}
        )


class ReplayFailedForm(forms.Form):
    since = forms.DateTimeField(
        initial=lambda: (timezone.now() - timedelta(days=1)).replace(microsecond=0),
        help_text="Events made at or after this time (the site's time zone).",
    )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "endpoint",
        "notification",
        "attempt",
        "succeeded",
        "status_code",
        "duration_ms",
        "created_at",
    )
    list_filter = ("succeeded", "status_code")
    search_fields = ("=notification__id", "endpoint__url")
    list_select_related = ("endpoint", "notification")
    show_full_result_count = False
    actions = ["replay"]

    @admin.action(description="Send the events of selected deliveries again (same event id)", permissions=["change"])
    def replay(self, request, queryset):
        self.message_user(request, f"{webhook_events_replay(events_of_deliveries(queryset))} event(s) queued again.")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in WebhookDelivery._meta.fields]

    def has_add_permission(self, request):
        return False
