"""Who may do what: the "operators" group, and every permission decision the admin and the API share.

One definition per decision (DESIGN.md, "One rule, one definition"): the admin's pages and
actions and the API's permission classes both ask these functions, so a user gets the same
answer through either door. A decision about other people's objects needs a staff account
(the admin lets no one else in) and a Django permission; customers act only on their own
objects, which the callers check with `owns`.

The group is kept up to date on every `migrate` (and every test-database flush) by a
post_migrate receiver rather than a data migration: Django creates permissions in post_migrate,
so a data migration cannot see those of models added in the same run, and a group made once
would miss every model added later. The receiver is idempotent and only adds.
"""

from __future__ import annotations

OPERATORS_GROUP = "operators"
# The project's own apps (and django-rq's dashboard); not auth: who has access is not an operator's call.
OPERATOR_APPS = ("kordant", "jobs", "scanners", "reports", "notifications", "django_rq")
OPERATOR_ACTIONS = (("jobs", "trigger_jobrun"), ("django_rq", "admin"))

TRIGGER_PERMISSION = "jobs.trigger_jobrun"
SCHEDULERS_PERMISSION = "jobs.schedulers"
# django-rq's own "Access admin page" permission: its dashboard is a window on Redis, not a console.
RQ_DASHBOARD_PERMISSION = "django_rq.admin"


def is_staff_account(user) -> bool:
    """An active staff account: who the admin lets in at all (AdminSite.has_permission)."""
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def _staff_with(user, permission: str) -> bool:
    return is_staff_account(user) and user.has_perm(permission)


def _model_permission(model, action: str) -> str:
    from django.contrib.auth import get_permission_codename

    return f"{model._meta.app_label}.{get_permission_codename(action, model._meta)}"


def may_view_all(user, model) -> bool:
    """Sees every row of `model`, not only their own: staff with its view or change permission (as the admin asks)."""
    return _staff_with(user, _model_permission(model, "view")) or _staff_with(user, _model_permission(model, "change"))


def may_change_others(user, model) -> bool:
    """Changes rows of `model` that are not their own (pause a schedule, acknowledge a finding)."""
    return _staff_with(user, _model_permission(model, "change"))


def may_trigger_runs(user) -> bool:
    """Enqueue, cancel, retry and copy runs, run schedules now, pause queues, regenerate reports."""
    return _staff_with(user, TRIGGER_PERMISSION)


def may_edit_scheduler_configs(user) -> bool:
    """Add, change, enable, disable and delete the tier table (SchedulerConfig)."""
    return _staff_with(user, SCHEDULERS_PERMISSION)


def may_view_rq_dashboard(user) -> bool:
    """Open django-rq's (read-only) dashboard."""
    return _staff_with(user, RQ_DASHBOARD_PERMISSION)


def may_request_report(user, owner_id: int | None) -> bool:
    """Ask for (or regenerate) a subscription's report: its owner, or whoever may run jobs."""
    return owns(user, owner_id) or may_trigger_runs(user)


def owns(user, owner_id: int | None) -> bool:
    """The object belongs to this signed-in user (their subscription's, or theirs)."""
    return bool(user is not None and user.is_authenticated and owner_id is not None and owner_id == user.pk)


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
