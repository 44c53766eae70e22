from importlib import import_module

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self):
        # Job types register themselves when their module is imported; workers must see them all.
        import_module("jobs.builtin")
        import_module("jobs.signals")
        import_module("jobs.checks")
        from jobs.operators import operators_group_ensure

        post_migrate.connect(operators_group_ensure, dispatch_uid="jobs.operators_group_ensure")
        for module in settings.JOBS_EXTRA_MODULES:
            import_module(module)
