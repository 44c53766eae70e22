from django.core.management.base import BaseCommand, CommandError

from notifications.signatures import webhook_public_keys
from notifications.signing_keys import (
    ALGORITHMS,
    SigningKeyUnavailable,
    webhook_signing_key_retire,
    webhook_signing_key_rotate,
)


class Command(BaseCommand):
    help = (
        "The project's webhook signing keys (WEBHOOK_SIGNING_KEYS_DIR): `list` them, `rotate --algorithm"
        " ed25519|rsa` to add a key that signs from now on, `retire <key id>` to drop an old one. See the README."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="Every key with its scheme, creation time and whether it signs now.")
        rotate = actions.add_parser("rotate", help="Add a new key; being the newest, it signs; older keys verify.")
        rotate.add_argument("--algorithm", choices=ALGORITHMS, required=True)
        retire = actions.add_parser("retire", help="Delete an old key: signatures it made no longer verify.")
        retire.add_argument("kid")

    def handle(self, *args, action, **options):
        try:
            if action == "rotate":
                key = webhook_signing_key_rotate(options["algorithm"])
                self.stdout.write(f"{key.kid} added; it signs {key.algorithm} webhooks from now on.")
            elif action == "retire":
                webhook_signing_key_retire(options["kid"])
                self.stdout.write(f"{options['kid']} retired.")
            for key in webhook_public_keys():
                signing = "signing" if key["signing"] else "verifies only"
                self.stdout.write(f"{key['kid']:40} {key['scheme']:17} {key['created_at']}  {signing}")
        except SigningKeyUnavailable as exc:
            raise CommandError(str(exc)) from exc
