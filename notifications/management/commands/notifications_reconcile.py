from django.core.management.base import BaseCommand

from notifications.services import notifications_reconcile


class Command(BaseCommand):
    help = "Mark failed the notifications whose send job ended without recording an outcome (e.g. a lost worker)."

    def handle(self, *args, **options):
        self.stdout.write(f"{notifications_reconcile()} notification(s) marked failed.")
