from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.permissions import AllowAny
from rest_framework.routers import APIRootView, DefaultRouter

from api import auth, domain, jobs, periodic, scheduler_forecast, schedules, stats, webhook_keys, webhooks
from api.errors import error_body

app_name = "api"
NOT_FOUND = error_body("not_found", "Not found.")


class APIRoot(APIRootView):
    """GET /api/v1/: every endpoint by name, as links (DRF's root view). Public, like the schema: it holds no data."""

    permission_classes = [AllowAny]
    schema = None  # a map of the contract, not an operation in it
    # Endpoints outside the router, by URL name, shown beside the router's lists.
    extra = {
        "auth/token": "token",
        "stats": "stats",
        "metrics": "metrics",
        "scheduler": "scheduler",
        "webhooks/keys": "webhook-keys",
        "scheduler/forecast": "scheduler-forecast",
    }


class Router(DefaultRouter):
    APIRootView = APIRoot

    def get_api_root_view(self, api_urls=None):
        lists = {prefix: self.routes[0].name.format(basename=basename) for prefix, _, basename in self.registry}
        return self.APIRootView.as_view(api_root_dict={**APIRoot.extra, **lists})


router = Router(trailing_slash=True)
router.register("jobs", jobs.JobRunViewSet, basename="jobrun")
router.register("job-types", jobs.JobTypeViewSet, basename="jobtype")
router.register("schedules", schedules.ScheduleViewSet, basename="schedule")
router.register("scheduler-configs", schedules.SchedulerConfigViewSet, basename="schedulerconfig")
router.register("periodic-jobs", periodic.PeriodicJobViewSet, basename="periodicjob")
router.register("subscriptions", domain.SubscriptionViewSet, basename="subscription")
router.register("alerts", domain.AlertViewSet, basename="alert")
router.register("title-changes", domain.TitleChangeViewSet, basename="titlechange")
router.register("removal-requests", domain.RemovalRequestViewSet, basename="removalrequest")
router.register("voice-analyses", domain.VoiceAnalysisViewSet, basename="voiceanalysis")
router.register("reports", domain.ReportViewSet, basename="report")
router.register("webhook-endpoints", webhooks.WebhookEndpointViewSet, basename="webhookendpoint")
router.register("webhook-events", webhooks.WebhookEventViewSet, basename="webhookevent")
router.register("webhook-deliveries", webhooks.WebhookDeliveryViewSet, basename="webhookdelivery")

urlpatterns = [
    path("auth/token/", auth.TokenView.as_view(), name="token"),
    path("stats/", stats.StatsView.as_view(), name="stats"),
    path("metrics", stats.MetricsView.as_view(), name="metrics"),
    path("scheduler", periodic.SchedulerView.as_view(), name="scheduler"),
    path("scheduler/pause", periodic.SchedulerPauseView.as_view(), name="scheduler-pause"),
    path("scheduler/resume", periodic.SchedulerResumeView.as_view(), name="scheduler-resume"),
    path("webhooks/keys", webhook_keys.WebhookKeysView.as_view(), name="webhook-keys"),
    path("scheduler/forecast", scheduler_forecast.SchedulerForecastView.as_view(), name="scheduler-forecast"),
    path("", include(router.urls)),
    # Anything else under /api/v1/ is a 404 in the API's error shape, not Django's HTML page;
    # [\s\S], not ".": a path with a newline in it (%0A) is "anything else" too.
    re_path(r"^[\s\S]*$", csrf_exempt(lambda request, *args, **kwargs: JsonResponse(NOT_FOUND, status=404))),
]
