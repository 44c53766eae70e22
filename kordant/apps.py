from django.apps import AppConfig


class KordantConfig(AppConfig):
    name = "kordant"
    verbose_name = "Kordant"
