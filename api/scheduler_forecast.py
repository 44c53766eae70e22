"""GET /api/v1/scheduler/forecast: the load forecast (jobs/forecast.py) as JSON, for staff who may view job runs.

Its own module and URL, beside `/api/v1/scheduler` (state, pause, resume), so each can change
without the other.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from api.filters import query_params_checked
from api.permissions import MayViewJobs
from jobs.forecast import FORECAST_HOURS, schedule_forecast
from jobs.registry import registry


class ForecastQuerySerializer(serializers.Serializer):
    hours = serializers.IntegerField(
        min_value=1, max_value=FORECAST_HOURS, default=FORECAST_HOURS, help_text="Hours ahead, from the current hour."
    )
    job_type = serializers.CharField(required=False, max_length=100, help_text="Only schedules of this job type.")

    def validate_job_type(self, value: str) -> str:
        if value not in registry:
            raise serializers.ValidationError(f"Unknown job type {value!r}.")
        return value


class ForecastBucketSerializer(serializers.Serializer):
    hour = serializers.DateTimeField(help_text="The UTC hour's start.")
    total = serializers.IntegerField()
    by_job_type = serializers.DictField(child=serializers.IntegerField(), help_text="Job types with runs this hour.")


class ForecastPeakSerializer(serializers.Serializer):
    hour = serializers.DateTimeField()
    runs = serializers.IntegerField()


class ForecastSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="The first hour (UTC): the current one, counted whole.")
    end = serializers.DateTimeField()
    hours = serializers.IntegerField()
    job_types = serializers.ListField(child=serializers.CharField())
    buckets = ForecastBucketSerializer(many=True)
    totals = serializers.DictField(child=serializers.IntegerField(), help_text="Runs in the window per job type.")
    total = serializers.IntegerField()
    peak = ForecastPeakSerializer(allow_null=True, help_text="The busiest hour (the first of equals); null if none.")
    schedules = serializers.IntegerField(help_text="Active schedules counted.")
    unreadable = serializers.IntegerField(help_text="Active schedules whose cron or timezone cannot be read.")


class SchedulerForecastView(APIView):
    """Runs that all active schedules (tier and periodic) will start per UTC hour, per job type."""

    permission_classes = [MayViewJobs]

    @extend_schema(
        parameters=[
            OpenApiParameter("hours", int, description="1 to 168 (default 168)."),
            OpenApiParameter("job_type", str, description="A registered job type."),
        ],
        responses=ForecastSerializer,
    )
    def get(self, request):
        query_params_checked(request.query_params)
        query = ForecastQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        forecast = schedule_forecast(hours=query.validated_data["hours"], job_type=query.validated_data.get("job_type"))
        return Response(ForecastSerializer(forecast.as_dict()).data)
