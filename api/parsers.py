"""The one place the API reads request data, and what it refuses there.

Every body (JSON, form or multipart; REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]) and every query
parameter a list is filtered by (api.filters) passes `checked_value` before a view sees it:

- size: a body over DATA_UPLOAD_MAX_MEMORY_SIZE (Django's own limit, 2.5 MB) is a 413, unread;
- depth: JSON nested deeper than MAX_DEPTH is a 400. json.loads recurses once per level, so
  200 KB of brackets raised RecursionError (a 500); no payload schema nests past a handful;
- what a database cannot store: NUL (PostgreSQL text and jsonb refuse it), lone surrogates (not
  encodable as UTF-8, so neither the database nor the JSON renderer can write them), NaN and
  infinities (not JSON; jsonb refuses them), integers beyond 64 bits (no integer column holds them).

A refusal is a 400 with code parse_error in the API's error shape, before any field is read, so a
refused request changes nothing.
"""

from __future__ import annotations

import json
import math
import re

from django.conf import settings
from rest_framework import exceptions, parsers, status

MAX_DEPTH = 32
MAX_INTEGER = 2**63 - 1
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class RequestTooLarge(exceptions.APIException):
    # Here, not in api.errors: DRF imports the parsers while api.errors is still importing DRF.
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."


def unstorable_reason(text: str) -> str | None:
    """Why `text` cannot be stored (a NUL, a lone surrogate), or None if it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return "contains a NUL character" if found.group() == "\x00" else "contains a lone UTF-16 surrogate"


def checked_value(value, *, max_depth: int = MAX_DEPTH):
    """`value` (parsed JSON or form data) if every string, key and number in it can be stored; else ParseError."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise exceptions.ParseError(f"JSON nested deeper than {max_depth} levels.")
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_INTEGER:
                raise exceptions.ParseError("A number is larger than 64 bits.")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise exceptions.ParseError("A number is not finite (NaN or infinity).")
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(str(key))
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
    return value


def _check_text(text: str) -> None:
    reason = unstorable_reason(text)
    if reason is not None:
        raise exceptions.ParseError(f"A string {reason}, which cannot be stored.")


def _refuse_constant(name: str):
    raise exceptions.ParseError(f"{name} is not JSON.")


def _read_limited(stream) -> bytes:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    data = stream.read(limit + 1) if stream is not None else b""
    if limit is not None and len(data) > limit:
        raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
    return data


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, limited as the module says."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = _read_limited(stream).decode(encoding)
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise exceptions.ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.") from None
        except ValueError as exc:  # invalid JSON, invalid UTF-8, an integer of more than 4300 digits
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        return checked_value(data)


class FormParser(parsers.FormParser):
    """DRF's form parser, its fields checked like JSON strings (the token endpoint takes forms)."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        checked_value({key: data.getlist(key) for key in data})
        return data


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser, its fields (not its files' bytes) checked like JSON strings."""

    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        checked_value({key: result.data.getlist(key) for key in result.data})
        checked_value([uploaded.name for uploaded in result.files.values()])
        return result
