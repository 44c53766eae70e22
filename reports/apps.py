from importlib import import_module

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"

    def ready(self):
        # The job type registers itself when its handler module is imported; workers must see it.
        import_module("reports.handler")
