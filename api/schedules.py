"""/api/v1/schedules/ (owners pause and resume their own; operators trigger) and /api/v1/scheduler-configs/."""

from __future__ import annotations

import copy

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api import filters, selectors
from api.errors import model_errors
from api.jobs import JobRunDetailSerializer, job_run_accepted
from api.permissions import MayTriggerRuns, OwnerOrMayChange, SchedulerConfigAccess
from api.throttles import EnqueueThrottle, UserThrottle
from api.viewsets import ListFiltersOnly
from jobs.models import SCHEDULE_STATE_FILTERS, JobRun, Schedule, SchedulerConfig, ScheduleState
from jobs.registry import registry
from jobs.scheduling import schedule_set_enabled, schedule_trigger_now
from kordant.audit import ADDITION, CHANGE, DELETION, admin_log


class ScheduleSerializer(serializers.ModelSerializer):
    job_type = serializers.CharField(source="config.job_type", read_only=True)
    tier = serializers.CharField(source="config.tier", read_only=True)
    last_status = serializers.ChoiceField(
        choices=JobRun.Status.choices, allow_blank=True, read_only=True, help_text="Empty until the first run."
    )
    state = serializers.ChoiceField(
        choices=ScheduleState.choices,
        read_only=True,
        help_text="Whether it runs: `enabled` is the owner's switch, but a schedule also waits while its "
        "tier's config is disabled, and is broken when its next run cannot be computed.",
    )
    state_reason = serializers.CharField(read_only=True)

    class Meta:
        model = Schedule
        fields = [
            "id",
            "subscription",
            "config",
            "job_type",
            "tier",
            "cron_expression",
            "timezone",
            "enabled",
            "state",
            "state_reason",
            "next_run_at",
            "last_run_at",
            "last_run",
            "last_status",
            "run_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ScheduleFilter(filters.FilterSet):
    enabled = django_filters.BooleanFilter()
    subscription = filters.IdFilter(field_name="subscription_id")
    job_type = django_filters.CharFilter(field_name="config__job_type")
    state = django_filters.ChoiceFilter(choices=ScheduleState.choices, method="filter_state")

    class Meta:
        model = Schedule
        fields = []

    def filter_state(self, queryset, name, value):
        return queryset.filter(SCHEDULE_STATE_FILTERS[value])


class ScheduleViewSet(ListFiltersOnly, viewsets.ReadOnlyModelViewSet):
    """A subscription's recurring runs. Owners pause and resume their own; staff also trigger a run now."""

    serializer_class = ScheduleSerializer
    filterset_class = ScheduleFilter
    ordering_fields = ["next_run_at", "last_run_at", "created_at", "id"]

    def get_queryset(self):
        return selectors.schedules_visible(self.request.user)

    def get_permissions(self):
        if self.action == "trigger":
            return [MayTriggerRuns()]
        if self.action in ("pause", "resume"):
            return [*super().get_permissions(), OwnerOrMayChange()]
        return super().get_permissions()

    def owner_id(self, schedule: Schedule) -> int | None:
        return schedule.subscription.user_id

    def _set_enabled(self, enabled: bool) -> Response:
        schedule = schedule_set_enabled(self.get_object(), enabled)
        admin_log(self.request.user, schedule, CHANGE, f"{'Resumed' if enabled else 'Paused'} through the API.")
        return Response(ScheduleSerializer(schedule).data)

    def get_throttles(self):
        if self.action == "trigger":
            return [UserThrottle(), EnqueueThrottle()]
        return super().get_throttles()

    @extend_schema(request=None, responses=ScheduleSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Stop this schedule's runs until it is resumed (its row and history stay)."""
        return self._set_enabled(False)

    @extend_schema(request=None, responses=ScheduleSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Start a paused schedule again from its next tick after now (no catch-up run)."""
        return self._set_enabled(True)

    @extend_schema(request=None, responses={202: JobRunDetailSerializer})
    @action(detail=True, methods=["post"])
    def trigger(self, request, pk=None):
        """Run the schedule's job now as a manual run; the schedule's timing stays as it was."""
        schedule = self.get_object()
        run = schedule_trigger_now(schedule, user=request.user)
        admin_log(request.user, schedule, CHANGE, f"Run now through the API (run {run.pk}).")
        return job_run_accepted(run)


class SchedulerConfigSerializer(serializers.ModelSerializer):
    """Validated as the admin validates it: the model's full_clean (cron syntax, frequency or cron, uniqueness)."""

    class Meta:
        model = SchedulerConfig
        fields = [
            "id",
            "tier",
            "job_type",
            "frequency",
            "cron_expression",
            "enabled",
            "priority",
            "overlap",
            "run_on_change",
            "description",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # full_clean checks the (tier, job_type) constraint below, with the admin's message.
        validators = []

    def get_fields(self):
        # Only types that declare a scheduled payload can run on a schedule: the schema offers those.
        fields = super().get_fields()
        names = registry.schedulable_names()
        fields["job_type"] = serializers.ChoiceField(
            choices=names,
            error_messages={
                "invalid_choice": f'"{{input}}" cannot run on a schedule; choose one of {", ".join(names)}.'
            },
        )
        return fields

    def validate(self, attrs):
        # The row as it would be saved, checked without saving; a copy, so a refusal leaves the instance alone.
        config = copy.copy(self.instance) if self.instance is not None else SchedulerConfig()
        for name, value in attrs.items():
            setattr(config, name, value)
        try:
            config.full_clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(model_errors(exc)) from None
        return attrs


class SchedulerConfigViewSet(ListFiltersOnly, viewsets.ModelViewSet):
    """What each tier runs and how often. Saving re-syncs the tier's schedules after commit.

    Read with the config's view permission, written with `jobs.schedulers`, as in the admin;
    every write goes to the admin log."""

    serializer_class = SchedulerConfigSerializer
    permission_classes = [SchedulerConfigAccess]
    filterset_fields = ["tier", "job_type", "enabled"]
    ordering_fields = ["tier", "job_type", "id"]

    def get_queryset(self):
        return selectors.scheduler_configs_all()

    # The change and its log entry commit together: no change without its entry, no entry without its change.
    @transaction.atomic
    def perform_create(self, serializer):
        config = serializer.save()
        admin_log(self.request.user, config, ADDITION, "Added through the API.")

    @transaction.atomic
    def perform_update(self, serializer):
        changed = [
            name for name, value in serializer.validated_data.items() if getattr(serializer.instance, name) != value
        ]
        config = serializer.save()
        admin_log(self.request.user, config, CHANGE, f"Changed {', '.join(changed) or 'nothing'} through the API.")

    @transaction.atomic
    def perform_destroy(self, instance):
        admin_log(self.request.user, instance, DELETION, "Deleted through the API.")  # first: it names the row
        instance.delete()

    def get_success_headers(self, data):
        return {"Location": reverse("api:schedulerconfig-detail", kwargs={"pk": data["id"]})}
