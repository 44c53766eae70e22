"""Operators' view of DarkWatch. Identifiers appear only masked; a value is typed in once,
when an item is added or replaced, and never shown again."""

from django import forms
from django.contrib import admin

from scanners.darkwatch.identifiers import IdentifierInvalid
from scanners.darkwatch.models import Alert, Breach, Watchlist, WatchlistItem
from scanners.findings_admin import acknowledge, resolve


class WatchlistItemForm(forms.ModelForm):
    value = forms.CharField(
        required=False,
        help_text="Typed once; stored encrypted and shown masked. Leave empty to keep the current value.",
    )

    class Meta:
        model = WatchlistItem
        fields = ["watchlist", "kind", "label", "active"]

    def clean(self):
        cleaned = super().clean()
        value = cleaned.get("value")
        if not value and not self.instance.pk:
            self.add_error("value", "Enter the identifier to watch.")
        elif value:
            self.instance.kind = cleaned.get("kind") or self.instance.kind
            try:
                self.instance.set_value(value)
            except IdentifierInvalid as exc:
                self.add_error("value", str(exc))
        return cleaned


class WatchlistItemInline(admin.TabularInline):
    model = WatchlistItem
    fields = ["kind", "masked", "label", "active", "last_scanned_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Watchlist)
class WatchlistAdmin(admin.ModelAdmin):
    list_display = ["name", "subscription", "created_at"]
    search_fields = ["name", "subscription__user__username", "subscription__user__email"]
    raw_id_fields = ["subscription"]
    inlines = [WatchlistItemInline]


@admin.register(WatchlistItem)
class WatchlistItemAdmin(admin.ModelAdmin):
    form = WatchlistItemForm
    list_display = ["masked", "kind", "label", "watchlist", "active", "last_scanned_at"]
    list_filter = ["kind", "active"]
    list_select_related = ["watchlist"]
    search_fields = ["label", "watchlist__subscription__user__username"]
    readonly_fields = ["masked", "created_at", "updated_at", "last_scanned_at"]
    raw_id_fields = ["watchlist"]


@admin.register(Breach)
class BreachAdmin(admin.ModelAdmin):
    list_display = ["name", "source", "breach_date", "severity", "added_at"]
    list_filter = ["source", "severity"]
    search_fields = ["name", "title", "domain"]
    date_hierarchy = "breach_date"
    readonly_fields = ["added_at"]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["item", "breach", "severity", "status", "first_seen", "notified_at", "subscription"]
    list_filter = ["severity", "status", "breach__source"]
    list_select_related = ["item", "breach", "subscription"]
    search_fields = ["breach__name", "subscription__user__username"]
    date_hierarchy = "first_seen"
    readonly_fields = ["subscription", "item", "breach", "severity", "first_seen", "notified_at", "updated_at"]
    actions = [acknowledge, resolve]
