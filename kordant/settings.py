"""Kordant Jobs settings: one module, every value from the environment.

Every variable is listed with a comment in `.env.example`. Local defaults are safe
(SQLite under var/, the embedded Redis, console email); production sets the
secrets and URLs explicitly.
"""

import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for development; real deployments set the environment.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env("KORDANT_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=True)

# The keys this repository ships for local development: public, so never good enough for production.
DEVELOPMENT_SECRET_KEY = "insecure-local-development-key-never-use-in-production"
DEVELOPMENT_ENCRYPTION_KEY = "bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1zZWNyZXQ="
DEVELOPMENT_HASH_KEY = "local-development-hash-key-not-secret"


def _refuse_public_secret(name: str, value: str, development_value: str) -> None:
    """With DEBUG off, a blank secret or one anybody can read in this repository stops the start."""
    if DEBUG:
        return
    if not value.strip():
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off (it is blank).")
    # "django-insecure-" is what startproject writes: a key that was never meant to be kept.
    if value == development_value or value.startswith("django-insecure-"):
        raise ImproperlyConfigured(
            f"{name} is the repository's development value, public to anyone; set a secret one when DEBUG is off."
        )


SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = DEVELOPMENT_SECRET_KEY
_refuse_public_secret("SECRET_KEY", SECRET_KEY, DEVELOPMENT_SECRET_KEY)

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
        # WAL lets the web server, workers and scheduler read while one of them writes. IMMEDIATE
        # takes the write lock when a transaction begins: a deferred one that read first and then
        # writes fails at once with "database is locked" if another process wrote meanwhile,
        # instead of waiting `timeout` seconds for its turn.
        config.setdefault("OPTIONS", {}).update(
            {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
            }
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
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "kordant",
    "jobs",
    # After jobs: the first app wins a management command's name, and jobs' rqworker-pool
    # (Kordant's pool, jobs/pool.py) replaces django-rq's.
    "django_rq",
    "scanners",
    "reports",
    "notifications",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from the app itself (gunicorn has no static server): compressed, hashed, cached forever.
    "whitenoise.middleware.WhiteNoiseMiddleware",
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
# Times shown with their zone (kordant/formats/en/formats.py).
FORMAT_MODULE_PATH = ["kordant.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "static")))
# Production (DEBUG off) serves what `manage.py collectstatic` wrote: names carry a content hash
# (cached for a year) and gzip/brotli copies sit beside them. DEBUG serves from the apps' folders.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Absolute links in notifications (a report's download link) start with this. Unset, it is the
# local server's address: `make run PORT=8123` tells every process KORDANT_WEB_PORT=8123.
SITE_URL = env("SITE_URL", default="") or f"http://127.0.0.1:{env.int('KORDANT_WEB_PORT', default=8000)}"

# PDF reports: the paper they are laid out on.
# How many reports a customer may have waiting (queued or running) at once through the API.
REPORTS_MAX_QUEUED_PER_CUSTOMER = env.int("REPORTS_MAX_QUEUED_PER_CUSTOMER", default=3)
REPORTS_PAGE_SIZE = env("REPORTS_PAGE_SIZE", default="A4")
if REPORTS_PAGE_SIZE not in ("A4", "Letter"):
    raise ImproperlyConfigured(f"REPORTS_PAGE_SIZE must be A4 or Letter, not {REPORTS_PAGE_SIZE!r}")

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
# Texts one user may be sent in any hour; more are suppressed with the reason recorded. 0: no limit.
NOTIFICATIONS_SMS_PER_HOUR = env.int("NOTIFICATIONS_SMS_PER_HOUR", default=10)

# Webhook signing keys held by the project (ed25519 for `standard-ed25519` endpoints, RSA-2048 for
# `rsa-sha256`): a directory of `<key id>.pem` private keys, never the database. The newest key of
# each algorithm signs, all of them are published at /api/v1/webhooks/keys (notifications/signing_keys.py).
# With WEBHOOK_SIGNING_KEYS_GENERATE (the default when DEBUG is on) a missing key is generated there
# on first use, so a fresh checkout signs; production mounts the directory and rotates with
# `manage.py webhook_keys rotate`.
# (A blank value, as .env.example has, means the default.)
WEBHOOK_SIGNING_KEYS_DIR = Path(env("WEBHOOK_SIGNING_KEYS_DIR", default="") or VAR_DIR / "webhook-keys")
WEBHOOK_SIGNING_KEYS_GENERATE = (
    env.bool("WEBHOOK_SIGNING_KEYS_GENERATE") if env("WEBHOOK_SIGNING_KEYS_GENERATE", default="") else DEBUG
)


def _whole_number(name: str, default: int, low: int, high: int) -> int:
    try:
        value = env.int(name, default=default)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ImproperlyConfigured(f"{name} must be a whole number from {low} to {high}, got {env.str(name)!r}")
    return value


# Fan-out delivery (notify_many -> notifications.send_batch): notifications per batch job (1-1000),
# and deliveries in flight at once in one batch. A batch holds one database connection, plus one
# per thread while it sends SMS or push: size the connection limit for workers x concurrency if
# your fan-outs are texts.
# Each batch job costs a fork and its bookkeeping, and ends with a partly idle round of threads:
# 500 per job spends that once per 500 deliveries (2,000 webhooks: 324/s with 200, 365/s with 500).
NOTIFICATIONS_BATCH_SIZE = _whole_number("NOTIFICATIONS_BATCH_SIZE", 500, 1, 1000)
NOTIFICATIONS_BATCH_CONCURRENCY = _whole_number("NOTIFICATIONS_BATCH_CONCURRENCY", 32, 1, 64)

# RemoveBrokers (scanners/removebrokers/): per-request HTTP timeout to brokers (s), days
# before a submitted opt-out is re-checked (a broker may override), days before the
# reminder for a manual opt-out, and attempts before a request that keeps failing fails.
REMOVEBROKERS_HTTP_TIMEOUT = env.float("REMOVEBROKERS_HTTP_TIMEOUT", default=10.0)
# Broker API calls (opt-outs, searches) a pass keeps in flight at once, per broker; each
# broker's own per-minute limit (DataBroker.rate_limit_per_minute) still holds.
REMOVEBROKERS_CONCURRENCY = env.int("REMOVEBROKERS_CONCURRENCY", default=4)
REMOVEBROKERS_RECHECK_DAYS = env.int("REMOVEBROKERS_RECHECK_DAYS", default=30)
REMOVEBROKERS_REMINDER_DAYS = env.int("REMOVEBROKERS_REMINDER_DAYS", default=7)
REMOVEBROKERS_MAX_ATTEMPTS = env.int("REMOVEBROKERS_MAX_ATTEMPTS", default=6)
# Where the demo brokers (`manage.py removebrokers_demo`) send. Empty: the stub `make run` starts,
# on a free port it writes to REMOVEBROKERS_DEMO_URL_FILE.
REMOVEBROKERS_DEMO_URL = env("REMOVEBROKERS_DEMO_URL", default="")
REMOVEBROKERS_DEMO_URL_FILE = VAR_DIR / "brokers.url"

# VoicePrint (scanners/voiceprint/): the speaker model class (empty: the built-in feature
# model; see engine.py for plugging in a trained one), the longest recording analysed (s),
# and the largest upload accepted (bytes; 64 MiB holds two minutes of 48 kHz stereo float).
VOICEPRINT_MODEL = env("VOICEPRINT_MODEL", default="")
VOICEPRINT_MAX_SECONDS = env.float("VOICEPRINT_MAX_SECONDS", default=120.0)
VOICEPRINT_MAX_UPLOAD_BYTES = env.int("VOICEPRINT_MAX_UPLOAD_BYTES", default=64 * 1024 * 1024)

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
# How many periodic jobs of their own a customer may have (through the API).
JOBS_PERIODIC_JOBS_PER_CUSTOMER = env.int("JOBS_PERIODIC_JOBS_PER_CUSTOMER", default=10)
# The jobs.monitor job (every minute) emails staff when one of these is exceeded, once per
# incident: an incident ends after its check has been fine for the whole cooldown.
JOBS_MONITOR_QUEUE_DEPTH = env.int("JOBS_MONITOR_QUEUE_DEPTH", default=1000)
JOBS_MONITOR_OLDEST_QUEUED_SECONDS = env.int("JOBS_MONITOR_OLDEST_QUEUED_SECONDS", default=600)
JOBS_MONITOR_FAILURE_RATE = env.float("JOBS_MONITOR_FAILURE_RATE", default=0.2)
JOBS_MONITOR_FAILURE_MIN_RUNS = env.int("JOBS_MONITOR_FAILURE_MIN_RUNS", default=20)
JOBS_MONITOR_HEARTBEAT_SECONDS = env.int("JOBS_MONITOR_HEARTBEAT_SECONDS", default=180)
JOBS_MONITOR_COOLDOWN_SECONDS = env.int("JOBS_MONITOR_COOLDOWN_SECONDS", default=3600)
# Development only: `enqueue` runs each job in the calling process as soon as the caller's
# transaction commits (blocking it), so `manage.py runserver` works alone. Retries and
# delayed runs still wait for a scheduler and a worker. A system check warns with DEBUG off.
JOBS_RUN_IN_PROCESS = env.bool("JOBS_RUN_IN_PROCESS", default=False)
# A schedule whose catch-up policy is "none" still runs a tick up to this late (a slow
# pass, a scheduler restart); a tick missed by more is recorded as skipped, not run.
JOBS_CATCH_UP_GRACE_SECONDS = env.int("JOBS_CATCH_UP_GRACE_SECONDS", default=60)
if not 0 <= JOBS_CATCH_UP_GRACE_SECONDS <= 86400:
    raise ImproperlyConfigured(
        f"JOBS_CATCH_UP_GRACE_SECONDS must be between 0 and 86400 seconds, not {JOBS_CATCH_UP_GRACE_SECONDS}"
    )
# Limits per job type, overriding what @job_type declares (jobs/limits.py), e.g.
# {"darkwatch.scan": {"concurrency_limit": 5, "rate_limit": "100/s", "limit_key": "{provider}"}};
# None for a field removes that limit. Checked at start-up (jobs/checks.py).
JOBS_LIMITS = env.json("JOBS_LIMITS", default={})
# A run's concurrency slot is released when its attempt ends; if its worker dies without
# saying so, it expires on its own this long after the attempt's timeout.
JOBS_LIMIT_LEASE_GRACE_SECONDS = env.int("JOBS_LIMIT_LEASE_GRACE_SECONDS", default=60)
# A waiting run given a freed slot holds it this long while it travels back through its queue.
JOBS_LIMIT_PROMOTED_HOLD_SECONDS = env.int("JOBS_LIMIT_PROMOTED_HOLD_SECONDS", default=600)
# Extra modules that declare job types (imported by every process at start).
JOBS_EXTRA_MODULES = env.list("JOBS_EXTRA_MODULES", default=[])

# --- scanners -------------------------------------------------------------------------


def _identifier_keys():
    """DarkWatch identifiers are encrypted at rest (Fernet) and matched by a keyed hash (HMAC-SHA256)."""
    from cryptography.fernet import Fernet

    keys = env.list("IDENTIFIER_ENCRYPTION_KEYS", default=[])
    hash_key = env("IDENTIFIER_HASH_KEY", default="")
    if not (keys and hash_key):
        if not DEBUG:
            raise ImproperlyConfigured(
                "IDENTIFIER_ENCRYPTION_KEYS and IDENTIFIER_HASH_KEY must be set when DEBUG is off: "
                "watched emails and phone numbers are encrypted and hashed with them."
            )
        # Fixed local keys, so a development database stays readable across restarts.
        keys = keys or [DEVELOPMENT_ENCRYPTION_KEY]
        hash_key = hash_key or DEVELOPMENT_HASH_KEY
    for key in keys:
        _refuse_public_secret("IDENTIFIER_ENCRYPTION_KEYS", key, DEVELOPMENT_ENCRYPTION_KEY)
    _refuse_public_secret("IDENTIFIER_HASH_KEY", hash_key, DEVELOPMENT_HASH_KEY)
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"IDENTIFIER_ENCRYPTION_KEYS: key {position} is not a Fernet key (32 url-safe base64 bytes); make one "
                "with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None
    return keys, hash_key


# The first key encrypts; every key decrypts, so a new key can be put first and old ones retired.
IDENTIFIER_ENCRYPTION_KEYS, IDENTIFIER_HASH_KEY = _identifier_keys()

DARKWATCH_PROVIDERS = env.list("DARKWATCH_PROVIDERS", default=["corpus"])
DARKWATCH_BATCH_SIZE = env.int("DARKWATCH_BATCH_SIZE", default=500)
# Phone numbers written without a +country code are read as numbers of this region.
DARKWATCH_DEFAULT_PHONE_REGION = env("DARKWATCH_DEFAULT_PHONE_REGION", default="US")
HIBP_BASE_URL = env("HIBP_BASE_URL", default="https://haveibeenpwned.com")
HIBP_API_KEY = env("HIBP_API_KEY", default="")
HIBP_USER_AGENT = env("HIBP_USER_AGENT", default="Kordant-DarkWatch/1")
HIBP_TIMEOUT_SECONDS = env.float("HIBP_TIMEOUT_SECONDS", default=10.0)
# Requests one scan keeps in flight at once (one per watched item), and the API key's
# documented rate (e.g. "10/m"; empty: none). A 429 still retries the run
# after its Retry-After.
HIBP_CONCURRENCY = env.int("HIBP_CONCURRENCY", default=4)
HIBP_RATE_LIMIT = env("HIBP_RATE_LIMIT", default="")

HOMETITLE_PROVIDERS = env.list("HOMETITLE_PROVIDERS", default=["recorder"])
HOMETITLE_BATCH_SIZE = env.int("HOMETITLE_BATCH_SIZE", default=500)
# Documents reach county datasets days or weeks after they are recorded, so every scan
# looks back this far behind its last one; already-seen documents are skipped.
HOMETITLE_LOOKBACK_DAYS = env.int("HOMETITLE_LOOKBACK_DAYS", default=30)
# A newly watched property is checked this far back from when it was added.
HOMETITLE_INITIAL_LOOKBACK_DAYS = env.int("HOMETITLE_INITIAL_LOOKBACK_DAYS", default=90)
HOMETITLE_SODA_BASE_URL = env("HOMETITLE_SODA_BASE_URL", default="")
HOMETITLE_SODA_DATASET = env("HOMETITLE_SODA_DATASET", default="")
HOMETITLE_SODA_APP_TOKEN = env("HOMETITLE_SODA_APP_TOKEN", default="")
HOMETITLE_SODA_TIMEOUT_SECONDS = env.float("HOMETITLE_SODA_TIMEOUT_SECONDS", default=20.0)
# Counties one scan queries at once, and the API's documented rate if it has one (e.g. "1000/h"; empty: none).
HOMETITLE_SODA_CONCURRENCY = env.int("HOMETITLE_SODA_CONCURRENCY", default=4)
HOMETITLE_SODA_RATE_LIMIT = env("HOMETITLE_SODA_RATE_LIMIT", default="")

# --- REST API (api/) -------------------------------------------------------------------

# Throttle rates per user (anonymous: per address) as "<count>/<second|minute|hour|day>".
# Counts are kept in Redis, so every web process shares them (api/throttles.py).


def _throttle_rate(name: str, default: str) -> str:
    value = env(name, default=default)
    if not re.fullmatch(r"[0-9]+/(second|minute|hour|day|s|m|h|d)", value):
        raise ImproperlyConfigured(
            f"{name} must be a count per second, minute, hour or day, like 600/minute; not {value!r}"
        )
    return value


API_THROTTLE_USER = _throttle_rate("API_THROTTLE_USER", "600/minute")
API_THROTTLE_ANON = _throttle_rate("API_THROTTLE_ANON", "60/minute")
API_THROTTLE_ENQUEUE = _throttle_rate("API_THROTTLE_ENQUEUE", "30/minute")
API_THROTTLE_TOKEN = _throttle_rate("API_THROTTLE_TOKEN", "10/minute")
# Failed logins per username, from any address; past it even the right password waits.
API_THROTTLE_LOGIN_FAILURES = _throttle_rate("API_THROTTLE_LOGIN_FAILURES", "10/hour")
# Proxies in front of the web server that append to X-Forwarded-For. 0: the connection's
# address is the client's (a client can write X-Forwarded-For itself).
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=25)
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=200)

REST_FRAMEWORK = {
    # Token first: an anonymous request is then a 401 with WWW-Authenticate, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttles.UserThrottle", "api.throttles.AnonThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": API_THROTTLE_USER,
        "anon": API_THROTTLE_ANON,
        "enqueue": API_THROTTLE_ENQUEUE,
        "token": API_THROTTLE_TOKEN,
        "login_failures": API_THROTTLE_LOGIN_FAILURES,
    },
    "NUM_PROXIES": NUM_PROXIES,
    # Request data is read and limited in one place (size, depth, what the database can store).
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser", "api.parsers.FormParser", "api.parsers.MultiPartParser"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.PageNumberPagination",
    "PAGE_SIZE": API_PAGE_SIZE,
    "DEFAULT_FILTER_BACKENDS": [
        "api.filters.FilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Kordant Jobs API",
    "DESCRIPTION": "Job status and control, schedules, and the products' findings. Errors have one shape: "
    '`{"error": {"code", "message", "fields"}}`.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Swagger UI would otherwise send the schema to validator.swagger.io for a badge.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "JobRunStatusEnum": "jobs.models.JobRun.Status",
        "FindingStatusEnum": "scanners.findings.FindingStatus",
        "SeverityEnum": "scanners.findings.Severity",
        "TierEnum": "kordant.models.Subscription.Tier",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        # rqworker and rqscheduler install their own handlers; propagating would print twice.
        "rq": {"propagate": False},
        "rq_scheduler": {"propagate": False},
        # Django's own console handler (DEBUG only) would print each 500 a second time beside the root's.
        "django": {"handlers": [], "level": "INFO"},
        # WeasyPrint and fontTools narrate every font subset at INFO (hundreds of lines per report).
        "weasyprint": {"level": env("LOG_LEVEL_PDF", default="WARNING")},
        "fontTools": {"level": env("LOG_LEVEL_PDF", default="WARNING")},
    },
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)

# HTTPS in production (README "Configuration"). Off by default, so local http keeps working; a
# deployment turns them on once every host it serves answers over https (HSTS is remembered by
# browsers for SECURE_HSTS_SECONDS: start small). Behind a proxy that terminates TLS, Django
# sees plain http unless SECURE_PROXY_SSL_HEADER names the proxy's header, and the redirect loops.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2 or not _proxy_ssl_header[0].startswith("HTTP_"):
        raise ImproperlyConfigured(
            f"SECURE_PROXY_SSL_HEADER must be a header and its value, like HTTP_X_FORWARDED_PROTO,https; "
            f"not {','.join(_proxy_ssl_header)!r}"
        )
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header)
