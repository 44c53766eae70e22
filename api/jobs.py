"""/api/v1/jobs/ and /api/v1/job-types/: run status for owners and staff; enqueue, cancel, retry for staff."""

from __future__ import annotations

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

from api import selectors
from api.permissions import IsStaff
from api.throttles import EnqueueThrottle, UserThrottle
from jobs.errors import UnknownJobType
from jobs.models import JobEvent, JobRun
from jobs.registry import QUEUES, registry
from jobs.services import enqueue, job_run_cancel, job_run_retry

ERROR_SUMMARY_LENGTH = 300


def job_run_location(run: JobRun) -> str:
    return reverse("api:jobrun-detail", kwargs={"pk": run.pk})


def error_summary(error: str) -> str:
    """The first line of a run's error, short enough for a list."""
    first = error.strip().splitlines()[0] if error.strip() else ""
    return first if len(first) <= ERROR_SUMMARY_LENGTH else first[: ERROR_SUMMARY_LENGTH - 1] + "…"


class JobEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobEvent
        fields = ["at", "status", "attempt", "worker", "message"]


class JobRunSerializer(serializers.ModelSerializer):
    error_summary = serializers.SerializerMethodField()
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = JobRun
        fields = [
            "id",
            "job_type",
            "status",
            "trigger",
            "queue",
            "progress",
            "progress_message",
            "attempt",
            "max_attempts",
            "user",
            "subscription",
            "schedule",
            "planned_for",
            "scheduled_for",
            "next_attempt_at",
            "error_type",
            "error_summary",
            "created_at",
            "enqueued_at",
            "started_at",
            "finished_at",
            "updated_at",
            "duration_seconds",
        ]
        read_only_fields = fields

    def get_error_summary(self, run: JobRun) -> str:
        return error_summary(run.error)

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_duration_seconds(self, run: JobRun) -> float | None:
        return run.duration.total_seconds() if run.duration is not None else None


class JobRunDetailSerializer(JobRunSerializer):
    events = JobEventSerializer(many=True, read_only=True)
    payload = serializers.JSONField(read_only=True)
    result = serializers.JSONField(read_only=True, allow_null=True)

    class Meta(JobRunSerializer.Meta):
        fields = [
            *JobRunSerializer.Meta.fields,
            "payload",
            "result",
            "error",
            "cancel_requested_at",
            "cancel_reason",
            "worker_name",
            "events",
        ]
        read_only_fields = fields


class EnqueueSerializer(serializers.Serializer):
    job_type = serializers.CharField(max_length=100, help_text="A name from GET /api/v1/job-types/.")
    payload = serializers.JSONField(default=dict, help_text="Checked against the job type's payload_schema.")
    priority = serializers.ChoiceField(choices=QUEUES, required=False, help_text="Queue; default: the type's own.")
    delay_seconds = serializers.FloatField(required=False, min_value=0, max_value=366 * 86400, source="delay")
    run_at = serializers.DateTimeField(required=False, source="at", help_text="Not before this time (with zone).")
    dedupe_key = serializers.CharField(required=False, max_length=200, allow_blank=False)

    def validate(self, attrs):
        if "delay" in attrs and "at" in attrs:
            raise serializers.ValidationError({"run_at": ["Give delay_seconds or run_at, not both."]})
        return attrs


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, max_length=300, default="cancelled by operator (API)")


class JobRunFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=JobRun.Status.choices)
    job_type = django_filters.CharFilter()
    trigger = django_filters.ChoiceFilter(choices=JobRun.Trigger.choices)
    schedule = django_filters.NumberFilter(field_name="schedule_id")
    subscription = django_filters.NumberFilter(field_name="subscription_id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    finished_after = django_filters.IsoDateTimeFilter(field_name="finished_at", lookup_expr="gte")
    finished_before = django_filters.IsoDateTimeFilter(field_name="finished_at", lookup_expr="lt")

    class Meta:
        model = JobRun
        fields = []


_NOT_MODIFIED = OpenApiResponse(description="Not modified: the run is as in your If-None-Match ETag.")


class JobRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Job runs. Owners see their subscriptions' runs; staff see all, and enqueue, cancel and retry."""

    serializer_class = JobRunSerializer
    filterset_class = JobRunFilter
    ordering_fields = ["created_at", "started_at", "finished_at", "status", "job_type"]
    ordering = ["-created_at"]

    def get_queryset(self):
        if self.action == "retrieve":
            return selectors.job_runs_visible_for_detail(self.request.user)
        return selectors.job_runs_visible(self.request.user)

    def get_serializer_class(self):
        if self.action == "create":
            return EnqueueSerializer
        if self.action in ("retrieve", "cancel", "retry"):
            return JobRunDetailSerializer
        return JobRunSerializer

    def get_permissions(self):
        if self.action in ("create", "cancel", "retry"):
            return [IsStaff()]
        return super().get_permissions()

    def get_throttles(self):
        if self.action in ("create", "retry"):
            return [UserThrottle(), EnqueueThrottle()]
        return super().get_throttles()

    @extend_schema(responses={200: JobRunDetailSerializer, 304: _NOT_MODIFIED})
    def retrieve(self, request, *args, **kwargs):
        run = self.get_object()
        etag = selectors.job_run_etag(run)
        headers = {"ETag": etag, "Last-Modified": http_date(run.updated_at.timestamp())}
        if etag in parse_etags(request.headers.get("If-None-Match", "")):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        response = Response(JobRunDetailSerializer(run).data, headers=headers)
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
        return Response(
            JobRunDetailSerializer(run).data,
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
        return Response(JobRunDetailSerializer(run).data)

    @extend_schema(request=None, responses={200: JobRunDetailSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Run a failed or cancelled run again from a fresh attempt count; 409 in any other state."""
        run = job_run_retry(self.get_object(), user=request.user)
        return Response(JobRunDetailSerializer(run).data)


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
