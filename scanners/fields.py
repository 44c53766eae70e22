"""Model fields stored encrypted, for personal data the code must read back in full.

A removal request's person (sent to the broker), a property's owner names (matched against
grantees) and a webhook endpoint's secret (signs each delivery) cannot be hashed like a
watched identifier, so they are stored as Fernet tokens made by the identifier encryption
(`scanners.darkwatch.identifiers.encrypt`/`decrypt`): one set of keys, rotated the same way
(IDENTIFIER_ENCRYPTION_KEYS: the first encrypts, every key decrypts). Reading the attribute
gives the plaintext; the database, its dumps and backups hold only tokens.

What that costs: the database cannot search, order or compare these columns (each write
gets a fresh token), so they are never filtered on; rows are found by their other fields.
"""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from scanners.darkwatch import identifiers


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; the attribute reads as the plaintext."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else identifiers.decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return None if value is None else identifiers.encrypt(value)


class EncryptedJSONField(EncryptedTextField):
    """A JSON value (a dict of a person's details) stored as a Fernet token of its JSON text."""

    def from_db_value(self, value, expression, connection):
        text = super().from_db_value(value, expression, connection)
        return None if text is None else json.loads(text)

    def to_python(self, value):
        return json.loads(value) if isinstance(value, str) else value

    def get_prep_value(self, value):
        return None if value is None else identifiers.encrypt(json.dumps(value, cls=DjangoJSONEncoder))

    def value_to_string(self, obj):
        return json.dumps(self.value_from_object(obj), cls=DjangoJSONEncoder)
