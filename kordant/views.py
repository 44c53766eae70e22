from django.http import JsonResponse
from django.views.decorators.http import require_GET

from kordant.selectors import system_health


@require_GET
def healthz(request):
    report = system_health()
    healthy = all(value == "ok" for value in report.values())
    return JsonResponse(report, status=200 if healthy else 503)
