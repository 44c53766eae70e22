import os

from django.core.management.base import BaseCommand

from kordant.services import admin_user_ensure


class Command(BaseCommand):
    help = "Create the local admin login once (ADMIN_USERNAME / ADMIN_PASSWORD, else a random password)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=None)
        parser.add_argument("--password", default=None)

    def handle(self, *args, username=None, password=None, **options):
        username = username or os.environ.get("ADMIN_USERNAME") or "admin"
        password = password or os.environ.get("ADMIN_PASSWORD") or None
        _, new_password = admin_user_ensure(username, password)
        if new_password is None:
            self.stdout.write(f"Admin login '{username}' exists; reset it with: manage.py changepassword {username}")
        else:
            created = f"Admin login created: username '{username}', password '{new_password}'"
            self.stdout.write(self.style.SUCCESS(created))
