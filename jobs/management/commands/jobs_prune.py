from django.core.management.base import BaseCommand

from jobs.services import job_runs_prune


class Command(BaseCommand):
    help = "Delete finished runs older than their retention (JOBS_KEEP_COMPLETED_DAYS / JOBS_KEEP_FAILED_DAYS)."

    def handle(self, *args, **options):
        self.stdout.write(f"Prune: {job_runs_prune()}")
