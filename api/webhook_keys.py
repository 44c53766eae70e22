"""GET /api/v1/webhooks/keys: the public keys that verify Kordant's ed25519 and RSA webhook signatures. Public."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications.signatures import SignatureScheme, webhook_public_keys
from notifications.signing_keys import ALGORITHMS


class WebhookPublicKeySerializer(serializers.Serializer):
    kid = serializers.CharField(help_text="Key id: the `keyid=` of an X-Webhook-Signature header.")
    scheme = serializers.ChoiceField(
        choices=[SignatureScheme.STANDARD_ED25519.value, SignatureScheme.RSA_SHA256.value],
        help_text="The endpoint signature scheme this key verifies.",
    )
    algorithm = serializers.ChoiceField(choices=list(ALGORITHMS))
    created_at = serializers.DateTimeField()
    signing = serializers.BooleanField(help_text="True for the newest key of its scheme: the one signing now.")
    pem = serializers.CharField(help_text="The public key, PEM (SubjectPublicKeyInfo).")
    whpk = serializers.CharField(
        required=False, help_text="ed25519 only: the public key in Standard Webhooks form, whpk_ + base64."
    )


class WebhookPublicKeysSerializer(serializers.Serializer):
    keys = WebhookPublicKeySerializer(many=True)


class WebhookKeysView(APIView):
    """Every key that may verify a signature, newest first per scheme; a receiver that meets an unknown
    key id (or a v1a signature no cached key verifies) fetches this again. No authentication: public keys."""

    # Public keys for anyone: credentials are not read, so a stale token cannot stand between a receiver
    # and the keys, and every caller is counted by the anonymous throttle, per address.
    authentication_classes = []
    permission_classes = [AllowAny]
    # The keys are public and change only on rotation; caches may keep them a few minutes.
    max_age = 300

    @extend_schema(responses=WebhookPublicKeysSerializer, auth=[])
    def get(self, request):
        response = Response({"keys": webhook_public_keys()})
        response["Cache-Control"] = f"public, max-age={self.max_age}"
        return response
