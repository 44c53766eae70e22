"""System checks run at start-up by every management command (runserver, rqworker, rqscheduler)."""

from django.core.checks import Error, register


@register()
def job_limits_check(app_configs=None, **kwargs):
    """settings.JOBS_LIMITS names real job types with valid limits (jobs/limits.py)."""
    from jobs.limits import settings_problems
    from jobs.registry import registry

    return [
        Error(problem, hint="See 'Limits per job type' in the README.", obj="settings.JOBS_LIMITS", id="jobs.E001")
        for problem in settings_problems(registry)
    ]
