"""What the API benchmark's gunicorn serves: the real project, plus two baseline endpoints (not part of the product)."""

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from kordant.urls import urlpatterns as project_urlpatterns


class MinimalView(APIView):
    """The floor: DRF with the API's own authentication (a token), permission and throttle, answering a constant."""

    def get(self, request):
        return Response({"ok": True})


class BareView(APIView):
    """DRF with no authentication, permission or throttle at all, for context."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    path("bench/minimal/", MinimalView.as_view()),
    path("bench/bare/", BareView.as_view()),
    *project_urlpatterns,
]
