"""POST /api/v1/auth/token/: a username and password for the user's API token."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.settings import api_settings

from api.throttles import TokenThrottle


class TokenView(ObtainAuthToken):
    """Send `username` and `password` (JSON or form); the answer's token goes in `Authorization: Token <token>`."""

    authentication_classes = []  # a login form: no session, so no CSRF token needed
    # ObtainAuthToken names DRF's own parsers; the API's are limited (api.parsers).
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES
    throttle_classes = [TokenThrottle]

    @extend_schema(
        request=AuthTokenSerializer,
        responses=inline_serializer("Token", {"token": serializers.CharField()}),
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
