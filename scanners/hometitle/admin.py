"""Operators' view of HomeTitle."""

from django.contrib import admin

from scanners.findings_admin import acknowledge, resolve
from scanners.hometitle.models import Property, RecordedDocument, TitleChange


@admin.register(Property)
class PropertyAdmin(admin.ModelAdmin):
    list_display = ["address", "county", "parcel_number", "subscription", "last_scanned_at"]
    list_filter = ["county"]
    search_fields = ["address", "parcel_number", "subscription__user__username"]  # owner names are encrypted
    readonly_fields = ["parcel_key", "created_at", "updated_at", "last_scanned_at"]
    raw_id_fields = ["subscription"]


@admin.register(RecordedDocument)
class RecordedDocumentAdmin(admin.ModelAdmin):
    list_display = ["document_number", "county", "parcel_number", "document_type", "recorded_date", "grantee"]
    list_filter = ["document_type", "county", "source"]
    search_fields = ["document_number", "parcel_number", "grantor", "grantee"]
    date_hierarchy = "recorded_date"
    # A county's search can hold millions of rows; an exact count per page would scan them all.
    show_full_result_count = False


@admin.register(TitleChange)
class TitleChangeAdmin(admin.ModelAdmin):
    list_display = ["document", "property", "severity", "status", "detected_at", "notified_at"]
    list_filter = ["severity", "status", "document__document_type"]
    list_select_related = ["document", "property"]
    search_fields = ["property__address", "document__document_number"]
    date_hierarchy = "detected_at"
    readonly_fields = ["property", "document", "severity", "detected_at", "notified_at", "updated_at"]
    actions = [acknowledge, resolve]
