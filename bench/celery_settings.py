"""Settings for the django-celery-beat side of bench/celery_beat.py: the project's own, plus its app."""

from kordant.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_beat"]  # noqa: F405
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
