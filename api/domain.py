"""Product reads under /api/v1/: subscriptions, DarkWatch alerts, HomeTitle title changes,
RemoveBrokers removal requests, VoicePrint analyses and PDF reports. Each user sees their own."""

from __future__ import annotations

import django_filters
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from api import filters, selectors
from api.jobs import JobRunDetailSerializer, job_run_accepted
from api.negotiation import ErrorsAsJSON
from api.permissions import OwnerOrMayChange
from api.throttles import EnqueueThrottle, UserThrottle
from api.viewsets import ListFiltersOnly
from jobs.operators import may_request_report
from kordant.audit import ADDITION, CHANGE, admin_log
from kordant.models import Subscription
from reports.models import Report, ReportKind
from reports.selectors import report_for_user
from reports.services import report_request
from reports.views import report_file_response
from scanners.darkwatch.models import Alert, Breach, WatchlistItem
from scanners.findings import FindingStatus
from scanners.hometitle.models import Property, RecordedDocument, TitleChange
from scanners.removebrokers.models import DataBroker, RemovalRequest
from scanners.services import findings_set_status
from scanners.voiceprint.models import AnalysisJob, Verdict, VoiceSample

# --- subscriptions ---------------------------------------------------------------------


class SubscriptionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Subscription
        fields = ["id", "user", "tier", "status", "timezone", "created_at", "updated_at"]
        read_only_fields = fields


class SubscriptionViewSet(ListFiltersOnly, viewsets.ReadOnlyModelViewSet):
    serializer_class = SubscriptionSerializer
    filterset_fields = ["tier", "status"]
    ordering_fields = ["created_at", "id"]

    def get_queryset(self):
        return selectors.subscriptions_visible(self.request.user)


# --- findings: DarkWatch alerts and HomeTitle title changes -----------------------------


class FindingActions:
    """acknowledge / resolve, for any finding with a FindingStatus (scanners.services.findings_set_status).

    The finding's owner, or staff with the model's change permission (as the admin's actions ask)."""

    def get_permissions(self):
        if self.action in ("acknowledge", "resolve"):
            return [*super().get_permissions(), OwnerOrMayChange()]
        return super().get_permissions()

    def _set_status(self, status_value: str):
        finding = self.get_object()
        findings_set_status(self.get_queryset().filter(pk=finding.pk), status_value)
        admin_log(self.request.user, finding, CHANGE, f"Marked {status_value} through the API.")
        return Response(self.get_serializer(self.get_queryset().get(pk=finding.pk)).data)

    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Mark the finding seen: it stays listed, as acknowledged."""
        return self._set_status(FindingStatus.ACKNOWLEDGED)

    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Mark the finding dealt with."""
        return self._set_status(FindingStatus.RESOLVED)


class WatchedItemSerializer(serializers.ModelSerializer):
    """A watched identifier, masked (j***@example.com): the raw value never leaves the database."""

    class Meta:
        model = WatchlistItem
        fields = ["id", "kind", "label", "masked"]
        read_only_fields = fields


class BreachSerializer(serializers.ModelSerializer):
    class Meta:
        model = Breach
        fields = ["id", "name", "title", "domain", "breach_date", "data_classes", "severity"]
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer):
    item = WatchedItemSerializer(read_only=True)
    breach = BreachSerializer(read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "subscription",
            "item",
            "breach",
            "severity",
            "status",
            "first_seen",
            "notified_at",
            "updated_at",
        ]
        read_only_fields = fields


class FindingFilter(filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=FindingStatus.choices)
    severity = django_filters.CharFilter()


class AlertFilter(FindingFilter):
    subscription = filters.IdFilter(field_name="subscription_id")

    class Meta:
        model = Alert
        fields = []


class AlertViewSet(ListFiltersOnly, FindingActions, viewsets.ReadOnlyModelViewSet):
    """DarkWatch: a watched item found in a breach."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    ordering_fields = ["first_seen", "severity", "status"]

    def get_queryset(self):
        return selectors.alerts_visible(self.request.user)

    def owner_id(self, alert: Alert) -> int | None:
        return alert.subscription.user_id


class PropertySerializer(serializers.ModelSerializer):
    class Meta:
        model = Property
        fields = ["id", "subscription", "address", "county", "parcel_number"]
        read_only_fields = fields


class RecordedDocumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = RecordedDocument
        fields = [
            "id",
            "county",
            "document_number",
            "document_type",
            "recorded_date",
            "grantor",
            "grantee",
            "amount",
            "source",
        ]
        read_only_fields = fields


class TitleChangeSerializer(serializers.ModelSerializer):
    property = PropertySerializer(read_only=True)
    document = RecordedDocumentSerializer(read_only=True)

    class Meta:
        model = TitleChange
        fields = ["id", "property", "document", "severity", "status", "detected_at", "notified_at", "updated_at"]
        read_only_fields = fields


class TitleChangeFilter(FindingFilter):
    subscription = filters.IdFilter(field_name="property__subscription_id")

    class Meta:
        model = TitleChange
        fields = []


class TitleChangeViewSet(ListFiltersOnly, FindingActions, viewsets.ReadOnlyModelViewSet):
    """HomeTitle: a new document recorded against a watched property."""

    serializer_class = TitleChangeSerializer
    filterset_class = TitleChangeFilter
    ordering_fields = ["detected_at", "severity", "status"]

    def get_queryset(self):
        return selectors.title_changes_visible(self.request.user)

    def owner_id(self, change: TitleChange) -> int | None:
        return change.property.subscription.user_id


# --- RemoveBrokers and VoicePrint ------------------------------------------------------


class DataBrokerSerializer(serializers.ModelSerializer):
    class Meta:
        model = DataBroker
        fields = ["id", "name", "method"]
        read_only_fields = fields


class RemovalRequestSerializer(serializers.ModelSerializer):
    """The person's details sent to the broker are not shown: they are on the request for the broker only."""

    broker = DataBrokerSerializer(read_only=True)

    class Meta:
        model = RemovalRequest
        fields = [
            "id",
            "subscription",
            "broker",
            "status",
            "attempts",
            "submissions",
            "next_attempt_at",
            "submitted_at",
            "confirmed_at",
            "rechecked_at",
            "broker_reference",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class RemovalRequestViewSet(ListFiltersOnly, viewsets.ReadOnlyModelViewSet):
    serializer_class = RemovalRequestSerializer
    filterset_fields = ["status", "subscription"]
    ordering_fields = ["created_at", "updated_at", "status"]

    def get_queryset(self):
        return selectors.removal_requests_visible(self.request.user)


class VoiceSampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = VoiceSample
        fields = ["id", "subscription", "purpose", "original_name", "size_bytes", "uploaded_at", "duration"]
        read_only_fields = fields


class VoiceAnalysisSerializer(serializers.ModelSerializer):
    sample = VoiceSampleSerializer(read_only=True)
    details = serializers.JSONField(read_only=True)
    verdict = serializers.ChoiceField(
        choices=Verdict.choices, allow_blank=True, read_only=True, help_text="Empty until the analysis is done."
    )

    class Meta:
        model = AnalysisJob
        fields = [
            "id",
            "sample",
            "status",
            "verdict",
            "similarity",
            "synthetic_score",
            "details",
            "error_code",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class VoiceAnalysisFilter(filters.FilterSet):
    subscription = filters.IdFilter(field_name="sample__subscription_id")

    class Meta:
        model = AnalysisJob
        fields = ["status", "verdict"]


class VoiceAnalysisViewSet(ListFiltersOnly, viewsets.ReadOnlyModelViewSet):
    """VoicePrint: the analysis of one uploaded recording (score and verdict)."""

    serializer_class = VoiceAnalysisSerializer
    filterset_class = VoiceAnalysisFilter
    ordering_fields = ["created_at", "finished_at"]

    def get_queryset(self):
        return selectors.voice_analyses_visible(self.request.user)


# --- reports ---------------------------------------------------------------------------


class ReportSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id",
            "subscription",
            "kind",
            "period_start",
            "period_end",
            "status",
            "page_count",
            "size_bytes",
            "checksum",
            "generated_at",
            "error",
            "created_at",
            "updated_at",
            "download_url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, report: Report) -> str | None:
        if report.status != Report.Status.READY or not report.file:
            return None
        path = reverse("api:report-download", kwargs={"pk": report.pk})
        # The schema promises a URL: absolute, on the host the client called (ALLOWED_HOSTS checked it).
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else settings.SITE_URL.rstrip("/") + path


class ReportRequestSerializer(serializers.Serializer):
    subscription = serializers.PrimaryKeyRelatedField(queryset=Subscription.objects.none())
    period_start = serializers.DateField()
    period_end = serializers.DateField()

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None:
            # Someone else's subscription reads as one that does not exist.
            self.fields["subscription"].queryset = selectors.subscriptions_visible(user)


class ReportViewSet(ListFiltersOnly, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """PDF security reports. Owners list their own, ask for an on-demand one and download it."""

    serializer_class = ReportSerializer
    filterset_fields = ["kind", "status", "subscription"]
    ordering_fields = ["period_end", "created_at"]

    def get_queryset(self):
        return selectors.reports_visible(self.request.user)

    def get_throttles(self):
        if self.action == "create":
            return [UserThrottle(), EnqueueThrottle()]
        return super().get_throttles()

    @extend_schema(request=ReportRequestSerializer, responses={202: JobRunDetailSerializer})
    def create(self, request, *args, **kwargs):
        """Ask for an on-demand report of a period; answers with the run that makes it (Location: the run)."""
        serializer = ReportRequestSerializer(data=request.data, user=request.user)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not may_request_report(request.user, data["subscription"].user_id):
            raise PermissionDenied("Only the subscription's owner, or operators who may run jobs, may ask for this.")
        started = timezone.now()
        run = report_request(
            data["subscription"], ReportKind.ON_DEMAND, data["period_start"], data["period_end"], user=request.user
        )
        if run.created_at >= started:  # asking again while one is queued returns that run and writes nothing
            admin_log(request.user, run, ADDITION, "Report requested through the API.")
        return job_run_accepted(run)

    @extend_schema(
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The report's PDF.")}
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer], content_negotiation_class=ErrorsAsJSON)
    def download(self, request, pk=None):
        """The PDF, to its owner and staff; 404 to anyone else and while it is not ready."""
        report = report_for_user(request.user, int(pk)) if str(pk).isdecimal() else None
        if report is None:
            raise NotFound("Not found.")
        return report_file_response(report)
