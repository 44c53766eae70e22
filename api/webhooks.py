"""/api/v1/webhook-endpoints/, /webhook-events/ and /webhook-deliveries/: the delivery log, and replay.

Customers see their own endpoints, the events sent to them and every attempt; someone else's
is a 404. Staff who may view webhook endpoints see all. A replay (one event, or every failed
event of an endpoint since a time) is asked by the endpoint's owner or by staff who may
change endpoints, and re-sends each event with its own id (notifications/services.py).
"""

from __future__ import annotations

from django import forms
from django_filters import BooleanFilter, CharFilter, ChoiceFilter
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api import filters, selectors
from api.filters import UTCDateTimeField
from api.permissions import OwnerOrMayChange
from api.throttles import EnqueueThrottle, UserThrottle
from api.viewsets import ListFiltersOnly
from kordant.audit import CHANGE, admin_log
from notifications.models import Notification, WebhookDelivery, WebhookEndpoint
from notifications.services import webhook_event_replay, webhook_events_replay_failed

# --- serializers ------------------------------------------------------------------------------


class WebhookEndpointSerializer(serializers.ModelSerializer):
    """An endpoint; its secret is never shown here."""

    kinds = serializers.ListField(child=serializers.CharField(), read_only=True)
    job_types = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "owner",
            "url",
            "kinds",
            "job_types",
            "active",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class WebhookEventSerializer(serializers.ModelSerializer):
    """One event to one endpoint: what it carries, and where its delivery stands."""

    event_id = serializers.SerializerMethodField(help_text="The id receivers dedupe on (Kordant-Delivery header).")
    endpoint = serializers.IntegerField(source="webhook_endpoint_id", read_only=True)
    data = serializers.JSONField(source="context", read_only=True, help_text="The event's `data`.")

    class Meta:
        model = Notification
        fields = [
            "id",
            "event_id",
            "endpoint",
            "kind",
            "status",
            "reason",
            "attempts",
            "data",
            "created_at",
            "sent_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_event_id(self, event: Notification) -> str:
        return f"ntf_{event.pk}"


class WebhookDeliverySerializer(serializers.ModelSerializer):
    """One attempt: the request as it went out and what the receiver answered."""

    event = serializers.IntegerField(source="notification_id", read_only=True)
    event_id = serializers.SerializerMethodField()
    kind = serializers.CharField(source="notification.kind", read_only=True)
    request_headers = serializers.DictField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event",
            "event_id",
            "kind",
            "attempt",
            "succeeded",
            "url",
            "request_headers",
            "request_body",
            "status_code",
            "duration_ms",
            "response_excerpt",
            "error",
            "created_at",
        ]
        read_only_fields = fields

    def get_event_id(self, delivery: WebhookDelivery) -> str:
        return f"ntf_{delivery.notification_id}"


class InstantField(serializers.DateTimeField):
    """An ISO 8601 instant with a real-world offset (as the list filters take it), in UTC."""

    def to_internal_value(self, value):
        if not isinstance(value, str) or len(value) > 64:
            self.fail("invalid", format="ISO 8601")
        try:
            parsed = UTCDateTimeField().clean(value)
        except forms.ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        if parsed is None:
            self.fail("required")
        return parsed


class ReplayFailedSerializer(serializers.Serializer):
    since = InstantField(help_text="Replay events made at or after this time (with its UTC offset).")


class ReplayedSerializer(serializers.Serializer):
    replayed = serializers.IntegerField(help_text="Events queued to be sent again (at most 1000 per request).")


# --- filters --------------------------------------------------------------------------------


class WebhookEventFilter(filters.FilterSet):
    endpoint = filters.IdFilter(field_name="webhook_endpoint_id")
    status = ChoiceFilter(choices=Notification.Status.choices)
    kind = CharFilter(max_length=64)
    created_after = filters.DateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Notification
        fields = []


class WebhookDeliveryFilter(filters.FilterSet):
    endpoint = filters.IdFilter(field_name="endpoint_id")
    event = filters.IdFilter(field_name="notification_id")
    succeeded = BooleanFilter()
    created_after = filters.DateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = WebhookDelivery
        fields = []


# --- views ----------------------------------------------------------------------------------


class ReplayActions:
    """Replays: the endpoint's owner, or staff who may change endpoints (as the admin asks)."""

    replay_actions = ("replay", "replay_failed")

    def get_permissions(self):
        if self.action in self.replay_actions:
            return [*super().get_permissions(), OwnerOrMayChange()]
        return super().get_permissions()

    def get_throttles(self):
        if self.action in self.replay_actions:
            return [UserThrottle(), EnqueueThrottle()]  # a replay queues send jobs
        return super().get_throttles()


class WebhookEndpointViewSet(ListFiltersOnly, ReplayActions, viewsets.ReadOnlyModelViewSet):
    """Webhook endpoints (created and changed by staff in the admin)."""

    serializer_class = WebhookEndpointSerializer
    filterset_fields = ["active"]
    ordering_fields = ["created_at", "id"]

    def get_queryset(self):
        return selectors.webhook_endpoints_visible(self.request.user)

    def owner_id(self, endpoint: WebhookEndpoint) -> int:
        return endpoint.owner_id

    @extend_schema(
        request=ReplayFailedSerializer,
        responses={
            202: ReplayedSerializer,
            409: OpenApiResponse(description="The endpoint is disabled: re-enable it first."),
        },
    )
    @action(detail=True, methods=["post"], url_path="replay-failed")
    def replay_failed(self, request, pk=None):
        """Send again every failed (or held back) event of this endpoint made since `since`, oldest first."""
        endpoint = self.get_object()
        serializer = ReplayFailedSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        since = serializer.validated_data["since"]
        replayed = webhook_events_replay_failed(endpoint, since)
        admin_log(
            request.user,
            endpoint,
            CHANGE,
            f"Replayed {replayed} failed event(s) since {since.isoformat()} through the API.",
        )
        return Response({"replayed": replayed}, status=status.HTTP_202_ACCEPTED)


class WebhookEventViewSet(ListFiltersOnly, ReplayActions, viewsets.ReadOnlyModelViewSet):
    """Events sent (or to be sent) to webhook endpoints, newest first."""

    serializer_class = WebhookEventSerializer
    filterset_class = WebhookEventFilter
    ordering_fields = ["created_at", "id"]

    def get_queryset(self):
        return selectors.webhook_events_visible(self.request.user)

    def owner_id(self, event: Notification) -> int:
        return event.webhook_endpoint.owner_id

    @extend_schema(
        request=None,
        responses={
            202: WebhookEventSerializer,
            409: OpenApiResponse(description="Being delivered already, or the endpoint is disabled."),
        },
    )
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        """Send this event again, with the same event id; 409 while it is still being delivered."""
        event = webhook_event_replay(self.get_object())
        admin_log(request.user, event, CHANGE, "Replayed through the API.")
        return Response(self.get_serializer(event).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryViewSet(ListFiltersOnly, viewsets.ReadOnlyModelViewSet):
    """Every delivery attempt: the request as sent, the answer's code, time and first 500 characters."""

    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilter
    ordering_fields = ["created_at", "id"]

    def get_queryset(self):
        return selectors.webhook_deliveries_visible(self.request.user)
