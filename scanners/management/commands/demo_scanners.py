from django.conf import settings
from django.core.management.base import BaseCommand

from scanners.demo import scanners_demo_ensure


class Command(BaseCommand):
    help = "Load the synthetic breach corpus and recorder data and watch demo items and properties (idempotent)."

    def handle(self, *args, **options):
        self.stdout.write(scanners_demo_ensure(settings.VAR_DIR / "demo"))
