"""/api/v1/stats/ (the dashboard numbers as JSON) and /api/v1/metrics (Prometheus): staff who may view job runs."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from api.metrics import metrics_text
from api.negotiation import ErrorsAsJSON
from api.permissions import MayViewJobs
from api.selectors import stats_dashboard


class SchedulerBeatSerializer(serializers.Serializer):
    age_seconds = serializers.FloatField()
    name = serializers.CharField()
    last_pass_seconds = serializers.FloatField()
    fired = serializers.IntegerField()


class PercentilesSerializer(serializers.Serializer):
    p50 = serializers.FloatField()
    p95 = serializers.FloatField()


class HourSerializer(serializers.Serializer):
    hour = serializers.DateTimeField()
    runs = serializers.IntegerField()
    failed = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    runs_by_status = serializers.DictField(child=serializers.IntegerField(), help_text="All runs kept, per status.")
    runs_by_status_24h = serializers.DictField(child=serializers.IntegerField())
    runs_by_type_24h = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    failure_rate_1h = serializers.DictField(child=serializers.FloatField(), help_text='Per job type; "*": all.')
    queue_depths = serializers.DictField(child=serializers.IntegerField())
    oldest_queued_seconds = serializers.FloatField(allow_null=True)
    scheduler = SchedulerBeatSerializer(allow_null=True)
    duration_percentiles_24h = serializers.DictField(child=PercentilesSerializer())
    runs_per_hour = HourSerializer(many=True)


class StatsView(APIView):
    """The operators' dashboard numbers."""

    permission_classes = [MayViewJobs]

    @extend_schema(responses=StatsSerializer)
    def get(self, request):
        return Response(StatsSerializer(stats_dashboard()).data)


class MetricsView(APIView):
    """Prometheus scrape target: queue depth, runs by status and type, run times, failures, scheduler heartbeat."""

    permission_classes = [MayViewJobs]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = ErrorsAsJSON

    @extend_schema(
        responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="Prometheus text format 0.0.4")}
    )
    def get(self, request):
        return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
