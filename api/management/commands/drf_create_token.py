from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api.services import api_token_issue


class Command(BaseCommand):
    help = "Issue an API token for a user and print it (shown once: only its digest is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("-r", "--reset", action="store_true", help="Revoke the user's other tokens first")

    def handle(self, *args, username, reset, **options):
        try:
            user = get_user_model()._default_manager.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"Cannot create the token: user {username!r} does not exist") from None
        key = api_token_issue(user, replace=reset)
        self.stdout.write(f"Generated token {key} for user {username}")
