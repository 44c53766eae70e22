"""`make run`'s demo report and the README's picture of it."""

import shutil

import pytest
from django.core.management import CommandError, call_command
from PIL import Image
from pypdf import PdfReader

from reports.models import Report

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_report_covers_the_demo_scans_and_is_asked_for_once(run_worker, settings, tmp_path, tier_configs):
    settings.VAR_DIR = tmp_path
    call_command("demo_data")
    call_command("demo_scanners")
    call_command("demo_report")
    call_command("demo_report")  # still queued: the same run, not a second one
    run_worker()

    reports = Report.objects.filter(kind="on_demand").select_related("subscription__user")
    assert {report.subscription.user.username for report in reports} == {"demo-plus", "demo-premium"}
    premium = reports.get(subscription__user__username="demo-premium")
    assert premium.status == "ready"
    with premium.file.open("rb") as pdf:
        text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "CloudNotes" in text and "Shady Holdings LLC" in text  # the scans ran before the report

    call_command("demo_report")  # they have reports now: nothing more is asked
    assert Report.objects.count() == 2


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (Debian package poppler-utils) is not installed")
def test_report_preview_writes_the_first_two_pages_side_by_side(run_worker, settings, tmp_path, tier_configs):
    settings.VAR_DIR = tmp_path
    call_command("demo_data")
    call_command("demo_report")
    run_worker()

    out = tmp_path / "docs" / "preview.png"
    call_command("report_preview", str(out))

    sheet = Image.open(out)
    assert sheet.width > 1.9 * sheet.height * (210 / 297)  # two A4 pages and a gap, not one
    assert sum(sheet.convert("L").histogram()[:128]) > 500  # there is text on it


def test_report_preview_without_a_ready_report_says_so(tmp_path):
    with pytest.raises(CommandError, match="no ready report"):
        call_command("report_preview", str(tmp_path / "p.png"))
