"""The "operators" group: view everything the project stores, act on jobs, edit no configuration.

Kept up to date on every `migrate` (and every test-database flush) by a post_migrate
receiver rather than a data migration: Django creates permissions in post_migrate, so a
data migration cannot see those of models added in the same run, and a group made once
would miss every model added later. The receiver is idempotent and only adds.
"""

from __future__ import annotations

OPERATORS_GROUP = "operators"
# The project's own apps (and django-rq's dashboard); not auth: who has access is not an operator's call.
OPERATOR_APPS = ("kordant", "jobs", "scanners", "reports", "notifications", "django_rq")
OPERATOR_ACTIONS = (("jobs", "trigger_jobrun"), ("django_rq", "admin"))


def operators_group_ensure(app_config=None, **kwargs):
    """Create the operators group if missing and give it every view permission and the trigger permission."""
    from django.contrib.auth.models import Group, Permission

    if app_config is not None and app_config.label not in OPERATOR_APPS:
        return None  # post_migrate comes once per app; only these add permissions the group wants
    from django.db.models import Q

    group, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    wanted = Q(content_type__app_label__in=OPERATOR_APPS, codename__startswith="view_")
    for app_label, codename in OPERATOR_ACTIONS:
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    missing = Permission.objects.filter(wanted).exclude(group=group)
    group.permissions.add(*missing)
    return group
