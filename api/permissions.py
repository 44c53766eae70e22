from rest_framework.permissions import BasePermission


class IsStaff(BasePermission):
    """Operators only: enqueue, cancel, retry, trigger, configs, stats."""

    message = "Only staff may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)
