from django.core.management.base import BaseCommand

from jobs.services import job_runs_recover


class Command(BaseCommand):
    help = "Re-queue runs that Redis lost and retry or fail runs whose worker died."

    def handle(self, *args, **options):
        self.stdout.write(f"Recovery: {job_runs_recover()}")
