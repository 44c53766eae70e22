from django.core.management.base import BaseCommand

from jobs.scheduling import schedules_sync_all


class Command(BaseCommand):
    help = "Rebuild every schedule and its rq-scheduler entry from subscriptions and configs; report changes."

    def handle(self, *args, **options):
        report = schedules_sync_all()
        self.stdout.write(f"{'Repaired' if report.changed else 'Already in step'}: {report}")
