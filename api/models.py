"""API tokens, stored hashed: the key is shown once, when it is issued, and never stored.

Why not DRF's `authtoken` (a plain key per user) and why not django-rest-knox: knox hashes
too, but brings its own login view (Basic auth), expiring multi-tokens with their own
response shape, and an admin of digests; this project's token endpoint, header
(`Authorization: Token <key>`) and tests stay as they are with one small model. A key is
40 random hex characters (160 bits), so one SHA-256 is enough: there is nothing to guess
from a digest, and no need for a slow password hash on every request.
"""

import hashlib
import secrets

from django.conf import settings
from django.db import models


def token_digest(key: str) -> str:
    """What is stored of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_token_key() -> str:
    return secrets.token_hex(20)


class APIToken(models.Model):
    """One API key of a user; `key` is set only on the instance that issued it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=8, editable=False, help_text="The key's first characters, to tell keys apart")
    created = models.DateTimeField(auto_now_add=True)

    key: str | None = None

    class Meta:
        verbose_name = "API token"
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    def save(self, *args, **kwargs):
        if not self.digest:  # a new token: make its key, keep only the digest
            self.key = new_token_key()
            self.digest = token_digest(self.key)
            self.prefix = self.key[:6]
        super().save(*args, **kwargs)
