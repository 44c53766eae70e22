from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.routers import DefaultRouter

from api import auth, domain, jobs, schedules, stats
from api.errors import error_body

app_name = "api"
NOT_FOUND = error_body("not_found", "Not found.")

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("jobs", jobs.JobRunViewSet, basename="jobrun")
router.register("job-types", jobs.JobTypeViewSet, basename="jobtype")
router.register("schedules", schedules.ScheduleViewSet, basename="schedule")
router.register("scheduler-configs", schedules.SchedulerConfigViewSet, basename="schedulerconfig")
router.register("subscriptions", domain.SubscriptionViewSet, basename="subscription")
router.register("alerts", domain.AlertViewSet, basename="alert")
router.register("title-changes", domain.TitleChangeViewSet, basename="titlechange")
router.register("removal-requests", domain.RemovalRequestViewSet, basename="removalrequest")
router.register("voice-analyses", domain.VoiceAnalysisViewSet, basename="voiceanalysis")
router.register("reports", domain.ReportViewSet, basename="report")

urlpatterns = [
    path("auth/token/", auth.TokenView.as_view(), name="token"),
    path("stats/", stats.StatsView.as_view(), name="stats"),
    path("metrics", stats.MetricsView.as_view(), name="metrics"),
    path("", include(router.urls)),
    # Anything else under /api/v1/ is a 404 in the API's error shape, not Django's HTML page;
    # [\s\S], not ".": a path with a newline in it (%0A) is "anything else" too.
    re_path(r"^[\s\S]*$", csrf_exempt(lambda request, *args, **kwargs: JsonResponse(NOT_FOUND, status=404))),
]
