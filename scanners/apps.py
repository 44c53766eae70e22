from importlib import import_module

from django.apps import AppConfig
from django.core.signals import setting_changed


class ScannersConfig(AppConfig):
    name = "scanners"

    def ready(self):
        # Job types register themselves when their handler module is imported; workers must see them all.
        for product in ("darkwatch", "hometitle", "removebrokers", "voiceprint"):
            import_module(f"scanners.{product}.handler")
        import_module("scanners.signals")
        import_module("scanners.checks")
        from scanners.darkwatch.identifiers import keys_changed

        setting_changed.connect(keys_changed, dispatch_uid="scanners.identifier_keys_changed")
