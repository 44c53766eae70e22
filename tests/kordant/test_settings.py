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
