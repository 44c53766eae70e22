"""/api/v1/jobs/ and /api/v1/job-types/: run status for owners and staff; enqueue, cancel, retry for operators."""

from __future__ import annotations

import copy
import datetime as dt
import uuid

import django_filters
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import http_date, parse_etags
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from api import filters, selectors
from api.permissions import MayTriggerRuns
from api.throttles import EnqueueThrottle, UserThrottle
from api.viewsets import ListFiltersOnly
from jobs.errors import UnknownJobType
from jobs.models import JobRun
from jobs.registry import QUEUES, registry
from jobs.services import enqueue, job_run_cancel, job_run_retry
from kordant.audit import ADDITION, CHANGE, admin_log

ERROR_SUMMARY_LENGTH = 300
# How far ahead an enqueue may be delayed, by delay_seconds or run_at alike.
MAX_DELAY = dt.timedelta(days=366)


def job_run_location(run: JobRun) -> str:
    return reverse("api:jobrun-detail", kwargs={"pk": run.pk})


def error_summary(error: str) -> str:
    """The first line of a run's error, short enough for a list."""
    first = error.strip().splitlines()[0] if error.strip() else ""
    return first if len(first) <= ERROR_SUMMARY_LENGTH else first[: ERROR_SUMMARY_LENGTH - 1] + "…"


# Plain serializers with the fields spelled out, not ModelSerializers: the detail is the
# endpoint clients poll, and introspecting the model on every response cost it as much
# as its two queries did (a millisecond of a four-millisecond answer).


class OutputSerializer(serializers.Serializer):
    """A serializer that only writes responses, its fields made and bound once per class.

    DRF deep-copies and binds every declared field again for every response; for the job
    detail (30 fields and the events) that was half of serializing it. These fields keep
    no per-response state (none reads the context; the method fields are pure functions of
    the run), so the set bound for the first response serves every later one. `.fields`
    (what the schema generator reads) is left as DRF makes it, from shallow copies.
    """

    def get_fields(self):
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}

    @property
    def _readable_fields(self):
        cls = type(self)
        fields = cls.__dict__.get("_response_fields")
        if fields is None:
            fields = [field for field in self.fields.values() if not field.write_only]
            cls._response_fields = fields
        return fields


class JobEventSerializer(OutputSerializer):
    at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=JobRun.Status.choices)
    attempt = serializers.IntegerField()
    worker = serializers.CharField()
    message = serializers.CharField()


class JobRunSerializer(OutputSerializer):
    id = serializers.UUIDField()
    job_type = serializers.CharField()
    status = serializers.ChoiceField(choices=JobRun.Status.choices)
    trigger = serializers.ChoiceField(choices=JobRun.Trigger.choices)
    queue = serializers.CharField()
    progress = serializers.FloatField(help_text="Percent done, as the handler last reported it.")
    progress_message = serializers.CharField()
    waiting_for_limit = serializers.CharField(
        help_text="Empty, or why the run, still queued, waits: its job type's concurrency or rate limit."
    )
    attempt = serializers.IntegerField(help_text="Attempts started so far.")
    max_attempts = serializers.IntegerField()
    user = serializers.IntegerField(source="user_id", allow_null=True, help_text="Who enqueued it, if a person did.")
    subscription = serializers.IntegerField(source="subscription_id", allow_null=True)
    schedule = serializers.IntegerField(source="schedule_id", allow_null=True)
    planned_for = serializers.DateTimeField(allow_null=True, help_text="The schedule tick this run is for.")
    scheduled_for = serializers.DateTimeField(allow_null=True, help_text="Not before this time.")
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    error_type = serializers.CharField()
    error_summary = serializers.SerializerMethodField(help_text="The first line of the error, at most 300 characters.")
    created_at = serializers.DateTimeField()
    enqueued_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField()
    duration_seconds = serializers.SerializerMethodField()

    def get_error_summary(self, run: JobRun) -> str:
        return error_summary(run.error)

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_duration_seconds(self, run: JobRun) -> float | None:
        return run.duration.total_seconds() if run.duration is not None else None


class JobRunDetailSerializer(JobRunSerializer):
    payload = serializers.JSONField()
    result = serializers.JSONField(allow_null=True)
    error = serializers.CharField(help_text="The whole error message (the traceback stays in the admin).")
    cancel_requested_at = serializers.DateTimeField(allow_null=True)
    cancel_reason = serializers.CharField()
    worker_name = serializers.CharField()
    events = JobEventSerializer(many=True, source="event_log", help_text="Every state change, oldest first.")


def job_run_detail_data(run: JobRun) -> dict:
    """A run as the detail shows it; its events are read if the caller has not already."""
    if not hasattr(run, "event_log"):
        run.event_log = selectors.job_run_events(run.pk)
    return JobRunDetailSerializer(run).data


def job_run_accepted(run: JobRun) -> Response:
    """202 with the run as its detail shows it, and where to poll it: what every "run it now" answers."""
    return Response(
        job_run_detail_data(run), status=status.HTTP_202_ACCEPTED, headers={"Location": job_run_location(run)}
    )


class EnqueueSerializer(serializers.Serializer):
    job_type = serializers.CharField(max_length=100, help_text="A name from GET /api/v1/job-types/.")
    payload = serializers.JSONField(default=dict, help_text="Checked against the job type's payload_schema.")
    priority = serializers.ChoiceField(choices=QUEUES, required=False, help_text="Queue; default: the type's own.")
    delay_seconds = serializers.FloatField(
        required=False, min_value=0, max_value=MAX_DELAY.total_seconds(), source="delay", help_text="At most 366 days."
    )
    run_at = serializers.DateTimeField(
        required=False, source="at", help_text="Not before this time (with zone); at most 366 days from now."
    )
    dedupe_key = serializers.CharField(required=False, max_length=200, allow_blank=False)

    def validate_run_at(self, value):
        # The same bound as delay_seconds: a run at 9999-12-31 is a mistake, or a row no one will ever see run.
        if value > timezone.now() + MAX_DELAY:
            raise serializers.ValidationError("At most 366 days from now, like delay_seconds.")
        return value

    def validate(self, attrs):
        if "delay" in attrs and "at" in attrs:
            raise serializers.ValidationError({"run_at": ["Give delay_seconds or run_at, not both."]})
        return attrs


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, max_length=300, default="cancelled by operator (API)")


class JobRunFilter(filters.FilterSet):
    # distinct=False: a status is one column of the row, and DISTINCT would make every count a sort.
    status = django_filters.MultipleChoiceFilter(choices=JobRun.Status.choices, distinct=False)
    job_type = django_filters.CharFilter()
    trigger = django_filters.ChoiceFilter(choices=JobRun.Trigger.choices)
    schedule = filters.IdFilter(field_name="schedule_id")
    subscription = filters.IdFilter(field_name="subscription_id")
    created_after = filters.DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.DateTimeFilter(field_name="created_at", lookup_expr="lt")
    finished_after = filters.DateTimeFilter(field_name="finished_at", lookup_expr="gte")
    finished_before = filters.DateTimeFilter(field_name="finished_at", lookup_expr="lt")

    class Meta:
        model = JobRun
        fields = []


_NOT_MODIFIED = OpenApiResponse(description="Not modified: the run is as in your If-None-Match ETag.")


class JobRunViewSet(ListFiltersOnly, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Job runs. Owners see their subscriptions' runs; staff see all, and enqueue, cancel and retry."""

    serializer_class = JobRunSerializer
    filterset_class = JobRunFilter
    ordering_fields = ["created_at", "started_at", "finished_at", "status", "job_type"]
    ordering = ["-created_at"]

    def get_queryset(self):
        runs = selectors.job_runs_visible(self.request.user)
        # A list shows neither payload, result nor traceback: they stay in the database.
        return runs.defer("payload", "result", "traceback") if self.action == "list" else runs

    def get_serializer_class(self):
        if self.action == "create":
            return EnqueueSerializer
        if self.action in ("retrieve", "cancel", "retry"):
            return JobRunDetailSerializer
        return JobRunSerializer

    def get_permissions(self):
        if self.action in ("create", "cancel", "retry"):
            return [MayTriggerRuns()]
        return super().get_permissions()

    def get_throttles(self):
        if self.action in ("create", "retry"):
            return [UserThrottle(), EnqueueThrottle()]
        return super().get_throttles()

    @extend_schema(responses={200: JobRunDetailSerializer, 304: _NOT_MODIFIED})
    def retrieve(self, request, pk=None):
        try:
            run = selectors.job_run_detail(request.user, uuid.UUID(pk))
        except ValueError:
            run = None
        if run is None:
            raise NotFound("Not found.")
        etag = selectors.job_run_etag(run)
        # private: the answer depends on who asks; no-cache: a client may keep it, but asks again (If-None-Match).
        headers = {
            "ETag": etag,
            "Last-Modified": http_date(run.updated_at.timestamp()),
            "Cache-Control": "private, no-cache",
        }
        if etag in parse_etags(request.headers.get("If-None-Match", "")):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        response = Response(job_run_detail_data(run), headers=headers)
        patch_vary_headers(response, ["Authorization", "Cookie"])
        return response

    @extend_schema(
        request=EnqueueSerializer,
        responses={
            201: JobRunDetailSerializer,
            200: OpenApiResponse(JobRunDetailSerializer, "An active run with the same dedupe key already existed."),
        },
    )
    def create(self, request, *args, **kwargs):
        serializer = EnqueueSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        started = timezone.now()
        run = enqueue(**serializer.validated_data, user=request.user, trigger=JobRun.Trigger.API)
        created = run.created_at >= started
        if created:  # a dedupe hit wrote nothing
            admin_log(request.user, run, ADDITION, "Enqueued through the API.")
        return Response(
            job_run_detail_data(run),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            headers={"Location": job_run_location(run)},
        )

    @extend_schema(request=CancelSerializer, responses={200: JobRunDetailSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel an active run (a running one is asked to stop); 409 if it already finished."""
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = job_run_cancel(self.get_object(), reason=serializer.validated_data["reason"])
        admin_log(request.user, run, CHANGE, f"Cancelled through the API: {serializer.validated_data['reason']}")
        return Response(job_run_detail_data(run))

    @extend_schema(request=None, responses={200: JobRunDetailSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Run a failed or cancelled run again from a fresh attempt count; 409 in any other state."""
        run = job_run_retry(self.get_object(), user=request.user)
        admin_log(request.user, run, CHANGE, "Retried through the API.")
        return Response(job_run_detail_data(run))


class JobTypeSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    queue = serializers.CharField()
    timeout = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    retry_delays = serializers.ListField(child=serializers.IntegerField())
    payload_schema = serializers.DictField(source="json_schema", help_text="JSON Schema of the payload.")


class JobTypeViewSet(viewsets.ViewSet):
    """The registered job types and the JSON schema each payload must match."""

    serializer_class = JobTypeSerializer
    lookup_value_regex = r"[a-z0-9_.]+"

    @extend_schema(responses=JobTypeSerializer(many=True))
    def list(self, request):
        return Response(JobTypeSerializer(registry.all(), many=True).data)

    @extend_schema(responses=JobTypeSerializer)
    def retrieve(self, request, pk=None):
        try:
            return Response(JobTypeSerializer(registry.get(pk)).data)
        except UnknownJobType:
            raise NotFound("No such job type.") from None
