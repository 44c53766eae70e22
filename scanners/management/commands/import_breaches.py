from scanners.darkwatch.services import breaches_import
from scanners.management.commands._importing import ImportCommand


class Command(ImportCommand):
    help = "Load breach records into the local DarkWatch corpus (CSV or JSON Lines); re-importing adds nothing."
    noun = "breach records"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--source", default="corpus", help="Source name the breaches are stored under")

    def handle(self, *args, file, format, batch_size, source, **options):
        self.run_import(breaches_import, file, format, batch_size, source=source)
