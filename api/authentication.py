"""Token authentication for the API: `Authorization: Token <key>`, checked against stored digests."""

from rest_framework import authentication, exceptions

from api.models import APIToken, token_digest
from api.throttles import anonymous_throttle_check


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token header, matched by the key's digest (api/models.py); refused tokens count
    against the anonymous throttle before the 401."""

    model = APIToken

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            anonymous_throttle_check(request)  # a 429 once the address is over the rate
            raise

    def authenticate_credentials(self, key):
        token = APIToken.objects.select_related("user").filter(digest=token_digest(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token
