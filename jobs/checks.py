"""System checks for the job settings, run at start-up by every management command (runserver,
rqworker, rqscheduler, `manage.py check`)."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.compatibility)
def in_process_mode_check(app_configs, **kwargs):
    # In-process mode runs each job inside the request that enqueued it: no timeout, no
    # concurrency, a slow job holds a web process. Fine on a laptop, an outage in production.
    if settings.JOBS_RUN_IN_PROCESS and not settings.DEBUG:
        return [
            checks.Warning(
                "JOBS_RUN_IN_PROCESS is on with DEBUG off: every enqueue runs its job inside the request.",
                hint="In-process mode is for development and tests; unset JOBS_RUN_IN_PROCESS and run workers.",
                id="jobs.W001",
            )
        ]
    return []


@checks.register()
def job_limits_check(app_configs=None, **kwargs):
    """settings.JOBS_LIMITS names real job types with valid limits (jobs/limits.py)."""
    from jobs.limits import settings_problems
    from jobs.registry import registry

    return [
        checks.Error(
            problem, hint="See 'Limits per job type' in the README.", obj="settings.JOBS_LIMITS", id="jobs.E001"
        )
        for problem in settings_problems(registry)
    ]
