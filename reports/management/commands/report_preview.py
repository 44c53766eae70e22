from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reports.models import Report
from reports.preview import PreviewUnavailable, report_preview_png


class Command(BaseCommand):
    help = "Write a PNG of a report's first pages side by side (default: the newest ready report, 2 pages)."

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path, help="where to write the PNG, e.g. docs/report-preview.png")
        parser.add_argument("--report", type=int, help="the report's id (default: the newest ready one)")
        parser.add_argument("--pages", type=int, default=2)

    def handle(self, *args, out: Path, report: int | None, pages: int, **options):
        reports = Report.objects.filter(status=Report.Status.READY)
        chosen = reports.filter(pk=report).first() if report else reports.order_by("-generated_at").first()
        if chosen is None:
            raise CommandError(f"no ready report {report}" if report else "no ready report yet")
        try:
            report_preview_png(chosen, out, pages=pages)
        except PreviewUnavailable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Wrote {out} from report {chosen.pk} "
            f"({chosen.subscription}, {chosen.period_start} to {chosen.period_end})."
        )
