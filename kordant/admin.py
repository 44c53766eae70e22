from django.contrib import admin

from kordant.models import Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "tier", "status", "timezone", "created_at", "updated_at")
    list_filter = ("tier", "status")
    search_fields = ("user__username", "user__email")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = ("created_at", "updated_at")
