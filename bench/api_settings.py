"""Settings for the API benchmark's gunicorn: the project's own, with bench/api_urls.py as the URLconf."""

from kordant.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
