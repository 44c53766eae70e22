"""The API's permission classes: each asks the one decision the admin asks too (jobs/operators.py)."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from jobs import operators
from jobs.models import JobRun, SchedulerConfig


class MayTriggerRuns(BasePermission):
    """Enqueue, cancel, retry, run a schedule now: `jobs.trigger_jobrun` (the operators group has it)."""

    message = "Only operators with the permission to run jobs may do this."

    def has_permission(self, request, view) -> bool:
        return operators.may_trigger_runs(request.user)


class MayViewJobs(BasePermission):
    """The job system's numbers (stats, metrics): whoever may see every run."""

    message = "Only staff who may view job runs may see this."

    def has_permission(self, request, view) -> bool:
        return operators.may_view_all(request.user, JobRun)


class SchedulerConfigAccess(BasePermission):
    """The tier table: read with its view permission, written with `jobs.schedulers`, as in the admin."""

    message = "Only holders of the jobs.schedulers permission may change scheduler configs."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return operators.may_view_all(request.user, SchedulerConfig)
        return operators.may_edit_scheduler_configs(request.user)


class MayEditSchedulerConfigs(BasePermission):
    """Pause and resume all scheduling: whoever may edit the tier table (`jobs.schedulers`)."""

    message = "Only holders of the jobs.schedulers permission may pause or resume scheduling."

    def has_permission(self, request, view) -> bool:
        return operators.may_edit_scheduler_configs(request.user)


class OwnerOrMayChange(BasePermission):
    """A change to one object: its owner, or staff with the model's change permission.

    The view says who owns an object with `owner_id(obj)`. Objects the user may not see at
    all never get here (the view's queryset hides them: 404)."""

    message = "Only the owner, or staff with the permission to change these, may do this."

    def has_object_permission(self, request, view, obj) -> bool:
        return operators.owns(request.user, view.owner_id(obj)) or operators.may_change_others(request.user, type(obj))


class OwnerOrMayTrigger(BasePermission):
    """Run one object's job now: its owner, or staff who may run jobs (as "run now" in the admin)."""

    message = "Only the owner, or staff with the permission to run jobs, may do this."

    def has_object_permission(self, request, view, obj) -> bool:
        return operators.owns(request.user, view.owner_id(obj)) or operators.may_trigger_runs(request.user)
