from django.core.management.base import BaseCommand

from scanners.removebrokers.demo import removebrokers_demo_ensure


class Command(BaseCommand):
    help = "Create fictional data brokers on the local stub and file requests for the demo subscriptions (idempotent)."

    def handle(self, *args, **options):
        self.stdout.write(removebrokers_demo_ensure())
