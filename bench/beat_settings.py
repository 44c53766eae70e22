"""Settings for bench/beat.py: django-celery-beat on a SQLite file of its own, nothing of the project's."""

import os
from pathlib import Path

SECRET_KEY = "benchmark-only"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django_celery_beat"]
DEFAULT_FILE = Path(__file__).resolve().parents[1] / "var" / "bench_beat.sqlite3"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("BENCH_BEAT_DB", DEFAULT_FILE)}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING_CONFIG = None
