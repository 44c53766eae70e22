"""Kordant Jobs settings: one module, every value from the environment.

Every variable is listed with a comment in `.env.example`. Local defaults are safe
(SQLite under var/, the embedded Redis, console email); production sets the
secrets and URLs explicitly.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for development; real deployments set the environment.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env("KORDANT_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=True)

SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-local-development-key-never-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])


def _database_from_env():
    default = f"sqlite:///{VAR_DIR / 'kordant.sqlite3'}"
    url = env("DATABASE_URL", default="") or default
    try:
        config = environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several kinds for a bad URL
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL ({url!r}): {exc}") from exc
    if not config.get("ENGINE"):
        raise ImproperlyConfigured(f"DATABASE_URL has an unknown scheme: {url!r}")
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # A fresh checkout has no var/ yet; SQLite creates the file but not its directory.
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        if config.get("NAME") and config["NAME"] != ":memory:":
            Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        # The test database must be a file so that worker processes see the rows tests write.
        config.setdefault("TEST", {})["NAME"] = str(VAR_DIR / "test.sqlite3")
        # WAL lets the web server, workers and scheduler read while one of them writes.
        config.setdefault("OPTIONS", {}).update(
            {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "timeout": 20}
        )
    config.setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
    return config


DATABASES = {"default": _database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _redis_url_from_env():
    from kordant.embedded_redis import EMBEDDED_SOCKET, embedded_redis_url, validate_redis_url

    url = env("REDIS_URL", default="")
    if not url:
        return embedded_redis_url(VAR_DIR / EMBEDDED_SOCKET), True
    validate_redis_url(url)
    return url, False


REDIS_URL, REDIS_EMBEDDED = _redis_url_from_env()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
    "rest_framework",
    "kordant",
    "jobs",
    "scanners",
    "reports",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "kordant.urls"
WSGI_APPLICATION = "kordant.wsgi.application"
ASGI_APPLICATION = "kordant.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Fixed to UTC on purpose: rq-scheduler reads cron strings in the process's local
# time, so any other zone would shift every schedule. Per-subscription zones live on
# the Subscription row.
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Kordant <no-reply@kordant.example>")

# Outbound notification providers (notifications/providers/). Empty credentials mean
# "not configured": a send then fails permanently with a message naming the variable.
TWILIO_API_BASE = env("TWILIO_API_BASE", default="https://api.twilio.com")
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env("TWILIO_FROM_NUMBER", default="")
EXPO_PUSH_URL = env("EXPO_PUSH_URL", default="https://exp.host")
EXPO_ACCESS_TOKEN = env("EXPO_ACCESS_TOKEN", default="")

# One Redis for every queue; workers listen in this order: critical, high, default, low.
QUEUE_NAMES = ("critical", "high", "default", "low")
RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600, "SERIALIZER": "rq.serializers.JSONSerializer"}
    for name in QUEUE_NAMES
}
# These classes make plain `manage.py rqworker ...` and `manage.py rqscheduler` speak JSON
# and keep JobRun rows true; see jobs/worker.py and jobs/scheduler.py.
RQ = {
    "JOB_CLASS": "jobs.worker.JSONJob",
    "WORKER_CLASS": env("RQ_WORKER_CLASS", default="jobs.worker.KordantWorker"),
    "SCHEDULER_CLASS": "jobs.scheduler.KordantScheduler",
}

# Job system knobs (see jobs/services.py).
JOBS_KEEP_COMPLETED_DAYS = env.int("JOBS_KEEP_COMPLETED_DAYS", default=7)
JOBS_KEEP_FAILED_DAYS = env.int("JOBS_KEEP_FAILED_DAYS", default=30)
# A pending row older than this with nothing in Redis is pushed again by the recovery pass.
JOBS_PENDING_GRACE_SECONDS = env.int("JOBS_PENDING_GRACE_SECONDS", default=30)
# A running run asked to cancel is stopped by force after this long.
JOBS_CANCEL_GRACE_SECONDS = env.int("JOBS_CANCEL_GRACE_SECONDS", default=30)
# A run whose singleton key is busy is queued again after this long.
JOBS_SINGLETON_WAIT_SECONDS = env.int("JOBS_SINGLETON_WAIT_SECONDS", default=5)
# On PostgreSQL, the worker's own status writes (claim, completion) commit without
# waiting for the WAL flush; see jobs/hotpath.py for why that loses no work.
JOBS_ASYNC_COMMIT = env.bool("JOBS_ASYNC_COMMIT", default=True)
# Re-syncing a tier after a config change runs inline up to this many subscriptions,
# as a background job (jobs.sync_tier) above it.
JOBS_SYNC_INLINE_LIMIT = env.int("JOBS_SYNC_INLINE_LIMIT", default=1000)
# A real-time (on change) run waits this long, so a burst of edits makes one run.
JOBS_EVENT_COALESCE_SECONDS = env.int("JOBS_EVENT_COALESCE_SECONDS", default=5)
# Extra modules that declare job types (imported by every process at start).
JOBS_EXTRA_MODULES = env.list("JOBS_EXTRA_MODULES", default=[])

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # rqworker and rqscheduler install their own handlers; propagating would print twice.
    "loggers": {"rq": {"propagate": False}, "rq_scheduler": {"propagate": False}},
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
