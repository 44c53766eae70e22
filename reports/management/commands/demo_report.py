from django.core.management.base import BaseCommand

from reports.demo import report_demo_ensure


class Command(BaseCommand):
    help = "Queue a 30-day report for the demo Plus and Premium subscribers, unless they have one (idempotent)."

    def handle(self, *args, **options):
        self.stdout.write(report_demo_ensure())
