from django.http import JsonResponse
from django.views.decorators.http import require_GET

from kordant.selectors import system_health


@require_GET
def healthz(request):
    report = system_health()
    # The status code answers "can this web process serve?"; the scheduler's state is
    # reported for monitoring but a stopped scheduler must not take the web tier down.
    healthy = report["database"] == "ok" and report["redis"] == "ok"
    return JsonResponse(report, status=200 if healthy else 503)
