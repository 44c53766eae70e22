"""The admin log (django.contrib.admin's LogEntry) as the one audit trail of people's changes.

The admin writes it for its own pages and actions; the API writes the same rows, so an
object's *History* in the admin shows what was done to it through either door, by whom.
"""

from __future__ import annotations

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry

__all__ = ["ADDITION", "CHANGE", "DELETION", "admin_log"]


def admin_log(user, obj, action_flag: int, message: str) -> LogEntry:
    """Record that `user` added, changed or deleted `obj` (call before deleting it: the row keeps its name)."""
    return LogEntry.objects.log_actions(
        user_id=user.pk, queryset=[obj], action_flag=action_flag, change_message=message, single_object=True
    )
