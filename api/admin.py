from django.contrib import admin

from api.models import APIToken


@admin.register(APIToken)
class APITokenAdmin(admin.ModelAdmin):
    """Keys are never shown (only their digest is stored); deleting a token revokes it."""

    list_display = ("prefix_shown", "user", "created")
    search_fields = ("user__username",)
    list_select_related = ("user",)
    fields = readonly_fields = ("prefix_shown", "user", "created")

    @admin.display(description="key")
    def prefix_shown(self, token):
        return f"{token.prefix}…"

    def has_add_permission(self, request):
        return False  # issued by POST /api/v1/auth/token/ or `manage.py drf_create_token`, which show the key once

    def has_change_permission(self, request, obj=None):
        return False
