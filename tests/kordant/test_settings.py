"""Settings refuse bad configuration with a message naming the variable.

Each case boots Django in a fresh interpreter, because settings are read once
per process.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def boot(**overrides):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "kordant.settings", **overrides}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("url", ["bogus", "postgres://user@host:notaport/db"])
def test_bad_database_url_names_the_variable(url):
    result = boot(DATABASE_URL=url)
    assert result.returncode != 0
    assert "ImproperlyConfigured: DATABASE_URL" in result.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "redis://127.0.0.1:notaport/0"])
def test_bad_redis_url_names_the_variable(url):
    result = boot(REDIS_URL=url)
    assert result.returncode != 0
    assert "ImproperlyConfigured: REDIS_URL" in result.stderr


def test_debug_off_without_secret_key_refuses_to_start():
    result = boot(DEBUG="false", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_debug_off_with_its_secrets_starts():
    result = boot(
        DEBUG="false",
        SECRET_KEY="a-real-secret-from-the-environment",
        IDENTIFIER_ENCRYPTION_KEYS="q" * 43 + "=",
        IDENTIFIER_HASH_KEY="a-real-hash-key",
    )
    assert result.returncode == 0, result.stderr


def test_time_zone_is_fixed_to_utc(settings):
    assert settings.TIME_ZONE == "UTC"
    assert set(settings.RQ_QUEUES) == {"critical", "high", "default", "low"}
    assert {queue["URL"] for queue in settings.RQ_QUEUES.values()} == {settings.REDIS_URL}


def test_production_refuses_to_start_without_identifier_keys():
    result = boot(DEBUG="false", SECRET_KEY="s" * 50, IDENTIFIER_ENCRYPTION_KEYS="", IDENTIFIER_HASH_KEY="")
    assert result.returncode != 0
    assert "ImproperlyConfigured: IDENTIFIER_ENCRYPTION_KEYS and IDENTIFIER_HASH_KEY must be set" in result.stderr


def test_a_malformed_encryption_key_names_the_variable():
    result = boot(IDENTIFIER_ENCRYPTION_KEYS="too-short")
    assert result.returncode != 0
    assert "IDENTIFIER_ENCRYPTION_KEYS: key 1 is not a Fernet key" in result.stderr


@pytest.mark.parametrize("rate", ["600", "600/fortnight", "lots/minute"])
def test_a_malformed_api_throttle_rate_names_the_variable(rate):
    result = boot(API_THROTTLE_ENQUEUE=rate)
    assert result.returncode != 0
    assert "ImproperlyConfigured: API_THROTTLE_ENQUEUE" in result.stderr


# --- production refuses the repository's own secrets (issue 16, item 10) -----------------

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-real-secret-from-the-environment",
    "IDENTIFIER_ENCRYPTION_KEYS": "q" * 43 + "=",
    "IDENTIFIER_HASH_KEY": "a-real-hash-key",
}


@pytest.mark.parametrize(
    "setting, value",
    [
        ("SECRET_KEY", " "),
        ("SECRET_KEY", "\t \n"),
        ("SECRET_KEY", "insecure-local-development-key-never-use-in-production"),
        ("SECRET_KEY", "django-insecure-abc123"),
        ("IDENTIFIER_ENCRYPTION_KEYS", "bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1zZWNyZXQ="),
        ("IDENTIFIER_ENCRYPTION_KEYS", "q" * 43 + "=,bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1zZWNyZXQ="),
        ("IDENTIFIER_HASH_KEY", "local-development-hash-key-not-secret"),
        ("IDENTIFIER_HASH_KEY", "   "),
    ],
)
def test_debug_off_refuses_a_blank_or_the_repositorys_own_secret(setting, value):
    result = boot(**{**PRODUCTION, setting: value})
    assert result.returncode != 0, f"{setting}={value!r} was accepted"
    assert f"ImproperlyConfigured: {setting}" in result.stderr


def test_check_deploy_passes_hsts_and_the_ssl_redirect_when_the_environment_turns_them_on():
    production = {
        **PRODUCTION,
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "SECRET_KEY": "k" + "".join(chr(ord("a") + n % 26) + str(n) for n in range(40)),
    }
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "kordant.settings", **production}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "W004" not in result.stderr + result.stdout and "W008" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == 0, result.stderr + result.stdout
    # And the defaults stay off, so local development over plain http keeps working.
    defaults = boot()
    assert defaults.returncode == 0, defaults.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOTIFICATIONS_BATCH_SIZE", "0"),
        ("NOTIFICATIONS_BATCH_SIZE", "5000"),
        ("NOTIFICATIONS_BATCH_CONCURRENCY", "lots"),
    ],
)
def test_a_batch_setting_out_of_range_names_the_variable(name, value):
    result = boot(**{name: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name} must be a whole number from 1 to" in result.stderr
