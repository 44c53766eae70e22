import datetime as dt
import shutil
import subprocess

import pytest

from reports import charts
from reports.errors import ReportContextInvalid
from reports.models import Report
from reports.rendering import pdf_from_html, report_context, report_html
from reports.selectors import report_data
from tests.reports.conftest import PERIOD, add_alerts

pytestmark = pytest.mark.django_db


def test_a_context_without_what_the_template_needs_is_refused_before_rendering(subscription):
    report = Report(subscription=subscription, kind="monthly", period_start=PERIOD[0], period_end=PERIOD[1])
    context = report_context(subscriber="Ada", report=report, data=report_data(subscription, *PERIOD), timezone="UTC")
    del context["subscriber"]
    del context["data"]["hometitle"]
    with pytest.raises(ReportContextInvalid, match=r"missing subscriber, data\.hometitle"):
        report_html(context)


def test_charts_escape_their_labels_and_stay_inline():
    svg = charts.bars_over_time([("<script>", 3), ("b", 0)], title='x" onload="alert(1)')
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'onload="alert' not in svg
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_the_pdf_fetches_nothing_from_the_network(httpserver):
    httpserver.expect_request("/tracker.png").respond_with_data(b"", content_type="image/png")
    pdf = pdf_from_html(f'<img src="{httpserver.url_for("/tracker.png")}"><p>hello</p>')
    assert pdf.page_count == 1 and pdf.content.startswith(b"%PDF")
    assert httpserver.log == []


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (Debian package poppler-utils) is not installed")
def test_page_one_renders_to_a_png_that_is_not_blank(subscription, tmp_path):
    from PIL import Image

    add_alerts(subscription, 20, start=dt.datetime(2026, 10, 2, tzinfo=dt.UTC))
    report = Report(subscription=subscription, kind="monthly", period_start=PERIOD[0], period_end=PERIOD[1])
    html = report_html(
        report_context(subscriber="Ada", report=report, data=report_data(subscription, *PERIOD), timezone="UTC")
    )
    (tmp_path / "r.pdf").write_bytes(pdf_from_html(html).content)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(tmp_path / "r.pdf"), str(tmp_path / "p")],
        check=True,
    )
    (png,) = tmp_path.glob("p*.png")
    image = Image.open(png).convert("L")
    dark = sum(image.histogram()[:128])  # pixels darker than mid-grey
    assert dark > 500  # the cover's heading and name, not an empty white page
