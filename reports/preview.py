"""A picture of a report's first pages, side by side, for the README (`manage.py report_preview`)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from django.core.files.storage import default_storage
from PIL import Image

from reports.models import Report

GAP = 24  # pixels of grey between pages
BACKGROUND = (223, 226, 230)


class PreviewUnavailable(RuntimeError):
    """The preview cannot be made here (no pdftoppm, no ready report)."""


def report_preview_png(report: Report, out: Path, *, pages: int = 2, dpi: int = 60) -> Path:
    """Render the first `pages` pages of the report's PDF with pdftoppm and join them into one PNG at `out`."""
    if shutil.which("pdftoppm") is None:
        raise PreviewUnavailable("pdftoppm is not installed (Debian package poppler-utils)")
    if not report.file:
        raise PreviewUnavailable(f"report {report.pk} has no PDF yet (status {report.status})")
    with tempfile.TemporaryDirectory() as work:
        pdf = Path(work) / "report.pdf"
        with default_storage.open(report.file.name, "rb") as source:
            pdf.write_bytes(source.read())
        subprocess.run(
            ["pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", str(pages), str(pdf), str(Path(work) / "page")],
            check=True,
            capture_output=True,
        )
        images = [Image.open(path).convert("RGB") for path in sorted(Path(work).glob("page-*.png"))]
        width = sum(image.width for image in images) + GAP * (len(images) - 1)
        sheet = Image.new("RGB", (width, max(image.height for image in images)), BACKGROUND)
        x = 0
        for image in images:
            sheet.paste(image, (x, 0))
            x += image.width + GAP
        out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(out, optimize=True)
    return out
