"""/api/v1/periodic-jobs/ (staff manage all; customers their own) and /api/v1/scheduler (the switch).

Every write goes through jobs.periodic: validation, the customer rules and the schedule's
entry live there, so the admin and the API cannot drift apart. Writes are audit-logged.
"""

from __future__ import annotations

import copy

import django_filters
from django.db import transaction
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from api import filters, selectors
from api.jobs import JobRunDetailSerializer, JobRunSerializer, job_run_accepted
from api.permissions import MayEditSchedulerConfigs, MayViewJobs, OwnerOrMayChange, OwnerOrMayTrigger
from api.stats import SchedulerBeatSerializer
from api.throttles import EnqueueThrottle, UserThrottle
from api.viewsets import ListFiltersOnly
from jobs.models import SCHEDULE_STATE_FILTERS, JobRun, PeriodicJob, Schedule, ScheduleState
from jobs.periodic import (
    periodic_job_delete,
    periodic_job_save_as,
    periodic_job_set_enabled,
    periodic_job_trigger_now,
    scheduling_pause,
    scheduling_resume,
)
from jobs.selectors import scheduler_state
from kordant.audit import ADDITION, CHANGE, DELETION, admin_log


class PeriodicJobSerializer(serializers.ModelSerializer):
    """Types checked here; the rest (the model's full_clean, the customer rules) by jobs.periodic on save."""

    job_type = serializers.CharField(max_length=100)
    payload = serializers.JSONField(required=False, help_text="Checked against the job type's schema.")
    retry_delays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=7 * 86400),
        max_length=25,
        allow_null=True,
        required=False,
        help_text="Seconds before each retry; null means the job type's.",
    )
    owner = serializers.IntegerField(source="owner_id", read_only=True, allow_null=True)
    state = serializers.SerializerMethodField(help_text="active, paused or broken (no next run can be computed).")
    next_run_at = serializers.DateTimeField(source="schedule.next_run_at", read_only=True, allow_null=True)
    last_run_at = serializers.DateTimeField(source="schedule.last_run_at", read_only=True, allow_null=True)
    last_run = serializers.UUIDField(source="schedule.last_run_id", read_only=True, allow_null=True)
    last_status = serializers.CharField(source="schedule.last_status", read_only=True)
    run_count = serializers.IntegerField(source="schedule.run_count", read_only=True)

    class Meta:
        model = PeriodicJob
        fields = [
            "id",
            "name",
            "job_type",
            "payload",
            "frequency",
            "cron_expression",
            "timezone",
            "enabled",
            "priority",
            "max_attempts",
            "retry_delays",
            "overlap",
            "catch_up",
            "description",
            "owner",
            "builtin",
            "state",
            "next_run_at",
            "last_run_at",
            "last_run",
            "last_status",
            "run_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "builtin", "created_at", "updated_at"]
        # full_clean checks the name constraints, with the admin's message.
        validators = []

    def get_state(self, job: PeriodicJob) -> str:
        schedule = getattr(job, "schedule", None)
        return schedule.state if schedule is not None else ScheduleState.BROKEN


class PeriodicJobFilter(filters.FilterSet):
    enabled = django_filters.BooleanFilter()
    builtin = django_filters.BooleanFilter()
    job_type = django_filters.CharFilter()
    state = django_filters.ChoiceFilter(choices=ScheduleState.choices, method="filter_state")

    class Meta:
        model = PeriodicJob
        fields = []

    def filter_state(self, queryset, name, value):
        ids = Schedule.objects.filter(SCHEDULE_STATE_FILTERS[value], periodic_job__isnull=False)
        return queryset.filter(schedule__in=ids)


class PeriodicJobViewSet(ListFiltersOnly, viewsets.ModelViewSet):
    """Jobs of any type on a schedule of their own. Staff who may change periodic jobs manage all
    (as in the admin); everyone else manages only their own, of the types open to customers."""

    serializer_class = PeriodicJobSerializer
    filterset_class = PeriodicJobFilter
    ordering_fields = ["name", "job_type", "created_at", "id"]
    ordering = ["name"]

    def get_queryset(self):
        return selectors.periodic_jobs_visible(self.request.user)

    def get_permissions(self):
        if self.action == "trigger":
            return [*super().get_permissions(), OwnerOrMayTrigger()]
        if self.action in ("update", "partial_update", "destroy", "enable", "disable"):
            return [*super().get_permissions(), OwnerOrMayChange()]
        return super().get_permissions()

    def get_throttles(self):
        if self.action == "trigger":
            return [UserThrottle(), EnqueueThrottle()]
        return super().get_throttles()

    def owner_id(self, job: PeriodicJob) -> int | None:
        return job.owner_id

    # The change and its log entry commit together: no change without its entry, no entry without its change.
    @transaction.atomic
    def perform_create(self, serializer):
        job = periodic_job_save_as(PeriodicJob(**serializer.validated_data), self.request.user)
        serializer.instance = job
        admin_log(self.request.user, job, ADDITION, "Added through the API.")

    @transaction.atomic
    def perform_update(self, serializer):
        job = copy.copy(serializer.instance)
        changed = [name for name, value in serializer.validated_data.items() if getattr(job, name) != value]
        for name, value in serializer.validated_data.items():
            setattr(job, name, value)
        serializer.instance = periodic_job_save_as(job, self.request.user)
        admin_log(self.request.user, job, CHANGE, f"Changed {', '.join(changed) or 'nothing'} through the API.")

    @transaction.atomic
    def perform_destroy(self, instance):
        admin_log(self.request.user, instance, DELETION, "Deleted through the API.")  # first: it names the row
        periodic_job_delete(instance)

    def get_success_headers(self, data):
        return {"Location": reverse("api:periodicjob-detail", kwargs={"pk": data["id"]})}

    def _set_enabled(self, enabled: bool) -> Response:
        job = periodic_job_set_enabled(self.get_object(), enabled)
        admin_log(self.request.user, job, CHANGE, f"{'Enabled' if enabled else 'Disabled'} through the API.")
        return Response(PeriodicJobSerializer(selectors.periodic_jobs_visible(self.request.user).get(pk=job.pk)).data)

    @extend_schema(request=None, responses=PeriodicJobSerializer)
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        """Switch the job on: it runs from its next tick after now (no catch-up for the time it was off)."""
        return self._set_enabled(True)

    @extend_schema(request=None, responses=PeriodicJobSerializer)
    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        """Switch the job off: no runs until it is enabled again; its row and history stay."""
        return self._set_enabled(False)

    @extend_schema(request=None, responses={202: JobRunDetailSerializer})
    @action(detail=True, methods=["post"])
    def trigger(self, request, pk=None):
        """Run the job now as a manual run; its timing stays as it was."""
        job = self.get_object()
        run = periodic_job_trigger_now(job, user=request.user)
        admin_log(request.user, job, CHANGE, f"Run now through the API (run {run.pk}).")
        return job_run_accepted(run)

    @extend_schema(request=None, responses=JobRunSerializer(many=True))
    @action(detail=True, methods=["get"])
    def runs(self, request, pk=None):
        """The job's runs, newest first (scheduled and manual)."""
        job = self.get_object()
        runs = JobRun.objects.filter(schedule__periodic_job=job).defer("payload", "result", "traceback")
        page = self.paginate_queryset(runs.order_by("-created_at"))
        return self.get_paginated_response(JobRunSerializer(page, many=True).data)


# --- the scheduler -----------------------------------------------------------------------


class SchedulerStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=["running", "paused", "stale", "missing"],
        help_text="paused: an operator paused all scheduling; stale/missing: no scheduler has beaten lately.",
    )
    paused = serializers.BooleanField()
    changed_at = serializers.DateTimeField(allow_null=True, help_text="When the switch was last flipped.")
    changed_by = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    heartbeat = SchedulerBeatSerializer(allow_null=True)
    schedules = serializers.DictField(child=serializers.IntegerField(), help_text="Tier schedules per state.")
    periodic_jobs = serializers.DictField(child=serializers.IntegerField(), help_text="Periodic jobs per state.")


class PauseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class SchedulerView(APIView):
    """GET /api/v1/scheduler: whether scheduling runs, the scheduler's heartbeat, schedules per state."""

    permission_classes = [MayViewJobs]

    @extend_schema(responses=SchedulerStateSerializer)
    def get(self, request):
        return Response(SchedulerStateSerializer(scheduler_state()).data)


class SchedulerPauseView(APIView):
    """POST /api/v1/scheduler/pause: nothing fires until resumed (manual runs still work)."""

    permission_classes = [MayEditSchedulerConfigs]

    @extend_schema(request=PauseSerializer, responses=SchedulerStateSerializer)
    def post(self, request):
        given = PauseSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        with transaction.atomic():
            switch = scheduling_pause(user=request.user, reason=given.validated_data["reason"])
            admin_log(request.user, switch, CHANGE, "Paused all scheduling through the API.")
        return Response(SchedulerStateSerializer(scheduler_state()).data)


class SchedulerResumeView(APIView):
    """POST /api/v1/scheduler/resume: due schedules fire at the next pass, each under its catch-up policy."""

    permission_classes = [MayEditSchedulerConfigs]

    @extend_schema(request=None, responses=SchedulerStateSerializer)
    def post(self, request):
        with transaction.atomic():
            switch = scheduling_resume(user=request.user)
            admin_log(request.user, switch, CHANGE, "Resumed all scheduling through the API.")
        return Response(SchedulerStateSerializer(scheduler_state()).data)
