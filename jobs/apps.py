from importlib import import_module

from django.apps import AppConfig
from django.conf import settings


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self):
        # Job types register themselves when their module is imported; workers must see them all.
        import_module("jobs.builtin")
        import_module("jobs.signals")
        for module in settings.JOBS_EXTRA_MODULES:
            import_module(module)
