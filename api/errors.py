"""One error shape for every API error: {"error": {"code", "message", "fields"}}.

Domain errors are translated here, so views call services and let them raise:
InvalidTransition is a 409, PayloadInvalid / UnknownJobType / a model ValidationError
are 400s with field errors.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import (
    NON_FIELD_ERRORS,
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from api.parsers import RequestTooLarge
from jobs.errors import InvalidTransition, NotSchedulable, PayloadInvalid, UnknownJobType
from jobs.periodic import NotOpenToCustomers, PeriodicJobProtected
from notifications.errors import NotificationInvalid, NotReplayable
from reports.errors import ReportPeriodInvalid, ReportQueueFull


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "invalid_transition"
    default_detail = "The object is not in a state that allows this."


class TooManyQueued(exceptions.APIException):
    """A 429 that is not a rate: the customer has as much work waiting as they may (no Retry-After)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "too_many_reports_queued"
    default_detail = "Too many reports are waiting."


class FieldsInvalid(exceptions.ValidationError):
    """A 400 with field errors and a code of our own (payload_invalid, unknown_job_type)."""

    def __init__(self, fields: dict[str, list[str]], *, code: str, message: str):
        super().__init__(fields, code=code)
        self.error_code = code
        self.message = message


def _translate(exc: Exception) -> Exception:
    # Django's own limits on a body (DATA_UPLOAD_MAX_*), met while DRF reads it for a parser.
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge(f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return exceptions.ParseError(str(exc))
    if isinstance(exc, Http404):
        # Someone else's object and a missing one look the same: no model name, no hint.
        return exceptions.NotFound("Not found.")
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, InvalidTransition | NotSchedulable | NotReplayable):  # NotSchedulable: saved past validation
        return Conflict(str(exc))
    if isinstance(exc, NotificationInvalid):
        return exceptions.ValidationError({"non_field_errors": [str(exc)]})
    if isinstance(exc, PayloadInvalid):
        fields = {f"payload.{path}" if path != "priority" else path: messages for path, messages in exc.errors.items()}
        return FieldsInvalid(fields, code="payload_invalid", message=f"The payload does not match {exc.job_type}.")
    if isinstance(exc, UnknownJobType):
        return FieldsInvalid({"job_type": [str(exc)]}, code="unknown_job_type", message=str(exc))
    if isinstance(exc, ReportPeriodInvalid):
        return FieldsInvalid(exc.fields, code="invalid", message=str(exc))
    if isinstance(exc, ReportQueueFull):
        return TooManyQueued(str(exc))
    if isinstance(exc, NotOpenToCustomers):
        return exceptions.PermissionDenied(str(exc))
    if isinstance(exc, PeriodicJobProtected):
        return Conflict(exc.message, code="protected")
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(model_errors(exc))
    return exc


def model_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    """A model's full_clean() errors as DRF field errors; "__all__" (clean(), constraints) as non_field_errors."""
    if not hasattr(exc, "error_dict"):
        return {"non_field_errors": exc.messages}
    return {("non_field_errors" if key == NON_FIELD_ERRORS else key): value for key, value in exc.message_dict.items()}


def flatten_fields(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"a.b": [messages]}; list items by index ("items.0.name")."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            for sub, messages in flatten_fields(value, path).items():
                flat.setdefault(sub, []).extend(messages)
    elif isinstance(detail, list) and detail and all(isinstance(item, str) for item in detail):
        flat[prefix or "non_field_errors"] = [str(item) for item in detail]
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            flat.update(flatten_fields(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "non_field_errors"] = [str(detail)]
    return flat


def _code(exc: exceptions.APIException) -> str:
    if isinstance(exc, FieldsInvalid):
        return exc.error_code
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def exception_handler(exc, context):
    exc = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API error: Django's 500 handling and logging
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_fields(exc.detail)
        general = fields.get("non_field_errors")
        message = getattr(exc, "message", None) or (general[0] if general else "Some fields are invalid.")
        response.data = error_body(_code(exc), message, fields)
    else:
        response.data = error_body(_code(exc), str(exc.detail))
    return response
