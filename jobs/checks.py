"""System checks for the job settings (`manage.py check`, and every runserver start)."""

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
