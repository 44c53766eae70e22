from django.core.files.storage import default_storage
from django.http import FileResponse, Http404

from reports.links import report_from_link
from reports.models import Report
from reports.selectors import report_for_user

# One answer for every bad link (tampered, expired, another report's, gone): it tells nothing.
BAD_LINK = "This download link is not valid or has expired."


def report_download(request, report_id: int):
    """The report's PDF, to its subscription's owner or staff; anyone else gets 404, as if it did not exist."""
    report = report_for_user(request.user, report_id)
    if report is None:
        raise Http404("No such report")
    return report_file_response(report)


def report_link_download(request, token: str):
    """The PDF of the one report a signed e-mail link names, without a session (reports/links.py)."""
    report = report_from_link(token)
    if report is None:
        raise Http404(BAD_LINK)
    response = report_file_response(report)
    # A bearer link: keep it out of shared caches and out of any page's Referer.
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response


def report_file_response(report: Report) -> FileResponse:
    """The PDF as an attachment named for its period (the API's download answers the same)."""
    try:
        handle = default_storage.open(report.file.name, "rb")
    except FileNotFoundError:
        raise Http404("The report's file is missing; ask for it to be regenerated") from None
    filename = f"kordant-report-{report.period_start:%Y-%m-%d}-{report.period_end:%Y-%m-%d}.pdf"
    return FileResponse(handle, content_type="application/pdf", as_attachment=True, filename=filename)
