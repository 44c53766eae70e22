from django.core.management.base import BaseCommand

from jobs.demo import demo_data_ensure


class Command(BaseCommand):
    help = "Create a few demo subscriptions across tiers and a schedule that fires within a minute (idempotent)."

    def handle(self, *args, **options):
        self.stdout.write(demo_data_ensure())
