"""Query parameters of every list: checked once, and filters whose values the database always accepts.

`FilterBackend` (REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"]) refuses a query parameter the
database could not take (a NUL, an overlong value) before any filter reads it, and insists
every list's FilterSet derives from `FilterSet` below, which maps model fields to:

- `IdFilter` for every id: a plain integer compared with the column, never looked up first.
  django-filter's default for a foreign key (ModelChoiceFilter) answered 400 for an id that
  does not exist and 200 for someone else's, telling a customer which ids exist;
- `DateTimeFilter` for every instant: an ISO 8601 time with an offset some place on Earth
  uses (±14:00; PostgreSQL refused +16:00 with a 500), compared in UTC, its range checked.
"""

from __future__ import annotations

import datetime as dt

import django_filters
from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django_filters.fields import IsoDateTimeField
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions

from api.parsers import unstorable_reason

MAX_QUERY_VALUE_LENGTH = 1000
MAX_ID = 2**63 - 1
# The widest offsets in use (Kiribati +14:00, Baker Island -12:00); PostgreSQL refuses past ±15:59.
MAX_OFFSET = dt.timedelta(hours=14)


def query_params_checked(query_params) -> None:
    """ValidationError (400, field errors by parameter) if any query parameter could not reach the database."""
    problems = {}
    for name, values in query_params.lists():
        for value in [name, *values]:
            reason = unstorable_reason(value)
            if reason is None and len(value) > MAX_QUERY_VALUE_LENGTH:
                reason = f"is longer than {MAX_QUERY_VALUE_LENGTH} characters"
            if reason is not None:
                # A parameter's name that cannot be shown is reported under "query".
                problems[name if unstorable_reason(name) is None else "query"] = [f"The value {reason}."]
    if problems:
        raise exceptions.ValidationError(problems)


class UTCDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant with a real-world offset, as UTC."""

    default_error_messages = {
        "offset": "The UTC offset must be between -14:00 and +14:00.",
        "range": "The time is outside the years 1 to 9999 in UTC.",
    }

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        if abs(parsed.utcoffset()) > MAX_OFFSET:
            raise forms.ValidationError(self.error_messages["offset"], code="offset")
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["range"], code="range") from None


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """An id: a whole number compared as is. Someone else's id and a missing one both match nothing."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


_ID = {"filter_class": IdFilter}


class FilterSet(django_filters.rest_framework.FilterSet):
    """The base of every list's filters: ids and instants as above."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.AutoField: _ID,
        models.BigAutoField: _ID,
        models.ForeignKey: _ID,
        models.OneToOneField: _ID,
        models.DateTimeField: {"filter_class": DateTimeFilter},
    }


class FilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend, after checking every query parameter, with `FilterSet` as every list's base."""

    filterset_base = FilterSet

    def filter_queryset(self, request, queryset, view):
        query_params_checked(request.query_params)
        return super().filter_queryset(request, queryset, view)

    def get_filterset_class(self, view, queryset=None):
        filterset_class = super().get_filterset_class(view, queryset)
        if filterset_class is not None and not issubclass(filterset_class, FilterSet):
            raise ImproperlyConfigured(
                f"{filterset_class.__name__} must derive from api.filters.FilterSet "
                "(ids and instants the database takes)"
            )
        return filterset_class
