from importlib import import_module

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        # Registers the notifications.send job type; every worker must see it.
        import_module("notifications.handler")
        import_module("notifications.signals")
