"""POST /api/v1/auth/token/: a username and password for the user's API token."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.response import Response
from rest_framework.views import APIView

from api.services import api_token_issue
from api.throttles import AnonThrottle, LoginFailureThrottle, TokenThrottle


class TokenView(APIView):
    """Send `username` and `password` (JSON or form); the answer's token goes in `Authorization: Token <token>`."""

    authentication_classes = []  # a login form: no session, so no CSRF token needed
    permission_classes = []
    # Per address (every attempt), then per username (failed attempts): both before the password is checked.
    throttle_classes = [AnonThrottle, TokenThrottle, LoginFailureThrottle]
    serializer_class = AuthTokenSerializer

    @extend_schema(
        request=AuthTokenSerializer,
        responses=inline_serializer("Token", {"token": serializers.CharField()}),
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        if not serializer.is_valid():
            LoginFailureThrottle().record_failure(request)
            raise serializers.ValidationError(serializer.errors)
        # A new key per login: a stored key is only a digest and cannot be shown again.
        return Response({"token": api_token_issue(serializer.validated_data["user"])})
