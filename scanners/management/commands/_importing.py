"""What import_breaches and import_recordings share: open the file, print progress and rejected lines."""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from scanners import imports

REJECTED_SHOWN = 50


class ImportCommand(BaseCommand):
    noun = "records"

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="CSV with a header row, or JSON Lines (.jsonl)")
        parser.add_argument("--format", choices=imports.FORMATS, help="Default: from the file's extension")
        parser.add_argument("--batch-size", type=int, default=10_000)

    def run_import(self, service, path: Path, fmt: str | None, batch_size: int, **kwargs) -> None:
        try:
            fmt = imports.format_of(path, fmt)
            # Binary: lines are decoded one by one, so a line that is not UTF-8 is rejected by its number.
            stream = path.open("rb")
        except (imports.ImportFileInvalid, OSError) as exc:
            raise CommandError(str(exc)) from None
        last_print = 0.0

        def progress(report: imports.ImportReport) -> None:
            nonlocal last_print
            if time.monotonic() - last_print >= 1:
                last_print = time.monotonic()
                rate = report.read / report.seconds if report.seconds else 0
                self.stderr.write(f"  {report.read:,} lines read, {report.added:,} added ({rate:,.0f} lines/s)")

        with stream:
            try:
                report = service(stream, fmt, batch_size=batch_size, progress=progress, **kwargs)
            except imports.ImportFileInvalid as exc:
                raise CommandError(f"{path}: {exc}") from None
            except Exception as exc:  # the database or the writer failed: say how far it got, then fail
                if report := getattr(exc, "import_report", None):
                    self.summarize(path, report)
                raise CommandError(f"{path}: the import stopped: {type(exc).__name__}: {exc}") from exc
        self.summarize(path, report)

    def summarize(self, path: Path, report: imports.ImportReport) -> None:
        for line, reason in report.rejected[:REJECTED_SHOWN]:
            self.stderr.write(f"{path}:{line}: rejected: {reason}")
        if report.rejected_count > REJECTED_SHOWN:
            self.stderr.write(f"... and {report.rejected_count - REJECTED_SHOWN:,} more rejected lines")
        self.stdout.write(
            f"{path.name}: {report.read:,} lines read, {report.added:,} {self.noun} added, "
            f"{report.duplicates:,} already present, {report.rejected_count:,} rejected "
            f"({report.seconds:.1f} s)"
        )
