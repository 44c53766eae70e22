from scanners.hometitle.services import recordings_import
from scanners.management.commands._importing import ImportCommand


class Command(ImportCommand):
    help = "Load recorded documents into the local HomeTitle recorder dataset (CSV or JSON Lines)."
    noun = "documents"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--source", default="import", help="Source name stored on each document")

    def handle(self, *args, file, format, batch_size, source, **options):
        self.run_import(recordings_import, file, format, batch_size, source=source)
