"""The report e-mail's link: signed, expiring, for one report, with no session (issue 16, item 8)."""

import datetime as dt
import re

import pytest
import time_machine
from django.core import mail, signing
from django.core.files.storage import default_storage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reports.links import MAX_AGE, SALT, report_link_url
from reports.models import Report
from reports.services import report_generate, report_request
from tests.factories import SubscriptionFactory, UserFactory
from tests.reports.conftest import PERIOD

pytestmark = pytest.mark.django_db


def path_of(url: str) -> str:
    assert url.startswith("https://app.kordant.test/"), url
    return url.removeprefix("https://app.kordant.test")


def pdf_bytes(report: Report) -> bytes:
    with default_storage.open(report.file.name) as handle:
        return handle.read()


def download(client, path):
    response = client.get(path)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


@pytest.fixture
def report(subscription, media):
    return report_generate(subscription.pk, "monthly", *PERIOD)


@pytest.fixture
def bad_link_answer(client, report):
    """What a link to a report that never existed gets: every bad link must get exactly this."""
    token = signing.TimestampSigner(salt=SALT).sign_object({"report": 999_999, "owner": report.subscription.user_id})
    response, body = download(client, f"/reports/link/{token}/")
    assert response.status_code == 404
    return body


@pytest.mark.django_db(transaction=True)
def test_the_link_in_the_report_email_downloads_the_pdf_without_a_session(subscription, media, run_worker, client):
    """The owner's side: the report is asked for, a worker makes it and sends the e-mail; its link just works."""
    report_request(subscription, "on_demand", *PERIOD)
    run_worker()
    report = Report.objects.get()
    (email,) = [m for m in mail.outbox if m.to == ["ada@example.com"]]
    links = set(re.findall(r"https://app\.kordant\.test/\S+", email.body))
    assert len(links) == 1, email.body
    response, body = download(client, path_of(links.pop()))  # anonymous: customers cannot log in anywhere
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert body == pdf_bytes(report)
    assert response["Cache-Control"] == "private, no-store" and response["Referrer-Policy"] == "no-referrer"
    assert "sessionid" not in response.cookies  # it opened a file, not a session
    html = email.alternatives[0][0]
    assert "works until" in email.body and "works until" in html


def test_a_link_opens_its_own_report_and_no_other(client, report, subscription, media, bad_link_answer):
    other = report_generate(SubscriptionFactory(user=UserFactory(username="bob")).pk, "monthly", *PERIOD)
    sibling = report_generate(subscription.pk, "on_demand", dt.date(2026, 9, 1), dt.date(2026, 9, 30))
    link = path_of(report_link_url(report))
    assert download(client, link)[1] == pdf_bytes(report)
    token = link.split("/")[3]
    _value, timestamp, signature = token.rsplit(":", 2)
    for target in (other, sibling):
        # Someone else's report id (and the same owner's other report) under report A's signature.
        forged = signing.b64_encode(f'{{"report":{target.pk},"owner":{subscription.user_id}}}'.encode()).decode()
        response, body = download(client, f"/reports/link/{forged}:{timestamp}:{signature}/")
        assert (response.status_code, body) == (404, bad_link_answer)
    # A correctly signed value naming report B with A's owner: the owner does not match.
    mixed = signing.TimestampSigner(salt=SALT).sign_object({"report": other.pk, "owner": subscription.user_id})
    response, body = download(client, f"/reports/link/{mixed}/")
    assert (response.status_code, body) == (404, bad_link_answer)
    # The link is for the PDF only: it signs nobody in and opens nothing else.
    assert client.get("/api/v1/reports/").status_code == 401
    assert client.get(f"/reports/{report.pk}/download/").status_code == 404
    assert client.get("/admin/").status_code == 302


def test_a_link_expires_after_max_age(client, report, bad_link_answer):
    with time_machine.travel(dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC), tick=False):
        link = path_of(report_link_url(report))
    with time_machine.travel(dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC) + MAX_AGE - dt.timedelta(minutes=1)):
        assert download(client, link)[0].status_code == 200
    with time_machine.travel(dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC) + MAX_AGE + dt.timedelta(seconds=1)):
        response, body = download(client, link)
        assert (response.status_code, body) == (404, bad_link_answer)


def test_every_bad_link_gets_the_same_404(client, report, subscription, bad_link_answer):
    link = path_of(report_link_url(report))
    token = link.split("/")[3]
    value = {"report": report.pk, "owner": subscription.user_id}
    bad_tokens = [
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # a changed signature
        token.rsplit(":", 1)[0],  # no signature
        signing.TimestampSigner(salt="another.purpose").sign_object(value),  # signed for something else
        signing.TimestampSigner().sign_object(value),  # no salt
        signing.dumps(value),  # Django's default signing (sessions, messages) uses another salt
        signing.TimestampSigner(key="x" * 50, salt=SALT).sign_object(value),  # another key
        signing.TimestampSigner(salt=SALT).sign_object([report.pk, subscription.user_id]),  # another shape
        signing.TimestampSigner(salt=SALT).sign_object({"report": str(report.pk), "owner": subscription.user_id}),
        "A" * 400,
    ]
    for bad in bad_tokens:
        response, body = download(client, f"/reports/link/{bad}/")
        assert (response.status_code, body) == (404, bad_link_answer), bad
    assert client.get(f"/reports/link/{'A' * 401}/").status_code == 404


def test_a_link_dies_with_the_owners_account_and_while_the_report_is_not_ready(client, report, subscription):
    link = path_of(report_link_url(report))
    Report.objects.filter(pk=report.pk).update(status=Report.Status.FAILED)
    assert client.get(link).status_code == 404
    Report.objects.filter(pk=report.pk).update(status=Report.Status.READY)
    assert client.get(link).status_code == 200
    subscription.user.is_active = False
    subscription.user.save()
    assert client.get(link).status_code == 404


# The client and the report are only read: sharing them between examples is safe.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-:", max_size=400))
def test_no_made_up_token_opens_anything_or_breaks(token, client, report):
    response = client.get(f"/reports/link/{token}/")
    assert response.status_code == 404
