"""The project's webhook signing keys: ed25519 (`standard-ed25519`) and RSA-2048 (`rsa-sha256`).

Private keys live as unencrypted PKCS#8 PEM files, one per key, in
`settings.WEBHOOK_SIGNING_KEYS_DIR` (a mounted secret in production, var/webhook-keys locally),
never in the database: a database dump or a staff screen must not be able to sign as us.
A file's name is its key id, `<algorithm>-<UTC creation time>-<4 hex>` (`ed25519-20261205T101500Z-3f9a`),
so "newest" needs no other metadata and survives copying the files between machines.

Rotation: every key in the directory verifies (all are published at /api/v1/webhooks/keys),
the newest of each algorithm signs. `webhook_signing_key_rotate` adds a key (it signs at once);
`webhook_signing_key_retire` removes an old one once receivers no longer need it.

Keys are read once per process and re-read when the directory changes (its mtime: a new or
removed file changes it; keys are written to a temporary name and renamed in), so a rotation
made by the management command reaches running workers without a restart.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from django.conf import settings

ED25519 = "ed25519"
RSA = "rsa"
ALGORITHMS = (ED25519, RSA)
RSA_KEY_SIZE = 2048
_KID = re.compile(r"(?P<algorithm>ed25519|rsa)-(?P<created>\d{8}T\d{6}Z)-[0-9a-f]{4}")


class SigningKeyUnavailable(ValueError):
    """No usable key for an algorithm (none configured, or a key file that cannot be read); says which and why."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    created_at: datetime
    private_key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey

    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def whpk(self) -> str:
        """Standard Webhooks' form of an ed25519 public key: `whpk_` + base64 of the 32 raw bytes."""
        raw = self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "whpk_" + base64.b64encode(raw).decode()


def signing_keys(algorithm: str) -> list[SigningKey]:
    """Every key of `algorithm`, newest first (the first one signs)."""
    _check_algorithm(algorithm)
    directory = Path(settings.WEBHOOK_SIGNING_KEYS_DIR)
    try:
        stamp = directory.stat().st_mtime_ns
    except FileNotFoundError:
        return []
    return [key for key in _load(str(directory), stamp) if key.algorithm == algorithm]


def signing_key_current(algorithm: str) -> SigningKey:
    """The key that signs for `algorithm`: the newest; generated first if there is none and generation is on."""
    keys = signing_keys(algorithm)
    if keys:
        return keys[0]
    if settings.WEBHOOK_SIGNING_KEYS_GENERATE:
        with _directory_lock():
            # Another process may have generated one while this one waited for the lock.
            return (signing_keys(algorithm) or [webhook_signing_key_rotate(algorithm)])[0]
    raise SigningKeyUnavailable(
        f"no {algorithm} webhook signing key in {settings.WEBHOOK_SIGNING_KEYS_DIR} (WEBHOOK_SIGNING_KEYS_DIR);"
        f" create one with `manage.py webhook_keys rotate --algorithm {algorithm}`"
    )


def webhook_signing_key_rotate(algorithm: str) -> SigningKey:
    """Add a new key for `algorithm`; being the newest, it signs from now on, and the older ones still verify."""
    _check_algorithm(algorithm)
    directory = Path(settings.WEBHOOK_SIGNING_KEYS_DIR)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_key = (
        ed25519.Ed25519PrivateKey.generate()
        if algorithm == ED25519
        else rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)
    )
    created = datetime.now(UTC).replace(microsecond=0)
    newest = signing_keys(algorithm)
    if newest and newest[0].created_at >= created:
        # Two rotations within one second: the new one must still sort as the newest.
        created = newest[0].created_at + timedelta(seconds=1)
    kid = f"{algorithm}-{created:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Written whole under a temporary name, readable by this user only, then renamed in: a
    # reader never sees half a key, and the rename is what changes the directory's mtime.
    temporary = directory / f".{kid}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    temporary.rename(directory / f"{kid}.pem")
    return SigningKey(kid=kid, algorithm=algorithm, created_at=created, private_key=private_key)


def webhook_signing_key_retire(kid: str) -> None:
    """Delete an old key: it no longer verifies. The newest key of an algorithm cannot be retired (rotate first)."""
    match = _KID.fullmatch(kid)
    path = Path(settings.WEBHOOK_SIGNING_KEYS_DIR) / f"{kid}.pem"
    if match is None or not path.is_file():
        raise SigningKeyUnavailable(f"no webhook signing key {kid!r} in {settings.WEBHOOK_SIGNING_KEYS_DIR}")
    keys = signing_keys(match["algorithm"])
    if keys and keys[0].kid == kid:
        raise SigningKeyUnavailable(
            f"{kid} is the key that signs {match['algorithm']} webhooks now; rotate first, then retire it"
        )
    path.unlink()


@lru_cache(maxsize=4)
def _load(directory: str, stamp: int) -> tuple[SigningKey, ...]:
    # `stamp` (the directory's mtime) is only part of the cache key: a change re-reads the files.
    keys = []
    for path in Path(directory).glob("*.pem"):
        match = _KID.fullmatch(path.stem)
        if match is None:
            raise SigningKeyUnavailable(f"{path} is not named <algorithm>-<YYYYmmddTHHMMSSZ>-<4 hex>.pem")
        try:
            private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            # Loud, not skipped: skipping the newest key would quietly sign with an older one.
            raise SigningKeyUnavailable(f"cannot read webhook signing key {path}: {exc}") from exc
        wanted = ed25519.Ed25519PrivateKey if match["algorithm"] == ED25519 else rsa.RSAPrivateKey
        if not isinstance(private_key, wanted):
            raise SigningKeyUnavailable(f"{path} does not hold an {match['algorithm']} private key")
        if isinstance(private_key, rsa.RSAPrivateKey) and private_key.key_size < RSA_KEY_SIZE:
            raise SigningKeyUnavailable(f"{path} is a {private_key.key_size}-bit RSA key; at least 2048 bits")
        created = datetime.strptime(match["created"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        keys.append(
            SigningKey(kid=path.stem, algorithm=match["algorithm"], created_at=created, private_key=private_key)
        )
    keys.sort(key=lambda key: (key.created_at, key.kid), reverse=True)
    return tuple(keys)


@contextlib.contextmanager
def _directory_lock():
    directory = Path(settings.WEBHOOK_SIGNING_KEYS_DIR)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise SigningKeyUnavailable(f"unknown signing key algorithm {algorithm!r}; one of {', '.join(ALGORITHMS)}")
