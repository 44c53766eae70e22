"""hometitle.scan run the way production runs it: enqueued, then a burst worker."""

import io

import pytest

from jobs import enqueue
from jobs.models import JobRun
from notifications.models import Notification
from scanners.hometitle.models import TitleChange
from scanners.hometitle.services import recordings_import
from tests.scanners.factories import PropertyFactory

pytestmark = pytest.mark.django_db(transaction=True)

RECORDINGS = """county,document_number,parcel_number,document_type,recorded_date,grantor,grantee
sangamon,N-1,14-000001,QUITCLAIM DEED,{recent},Jane Doe,Richard Roe
sangamon,N-2,14-000002,RELEASE OF LIEN,{recent},Bank,Jane Doe
"""


def scan(run_worker, subscription_id) -> JobRun:
    run = enqueue("hometitle.scan", {"subscription_id": subscription_id})
    run_worker()
    run.refresh_from_db()
    return run


def test_a_quitclaim_to_a_stranger_is_critical_and_notified_once(run_worker, mailoutbox):
    from django.utils import timezone

    watched = PropertyFactory(parcel_number="14-000001", owner_names="Jane Doe")
    recordings_import(io.StringIO(RECORDINGS.format(recent=timezone.now().date().isoformat())), "csv")
    first = scan(run_worker, watched.subscription_id)
    assert first.status == JobRun.Status.COMPLETED, first.error
    assert first.result == {
        "properties": 1,
        "documents": 1,
        "new_changes": 1,
        "highest_severity": "critical",
        "notified_changes": 1,
    }
    assert scan(run_worker, watched.subscription_id).result["new_changes"] == 0
    assert TitleChange.objects.get().document.grantee == "Richard Roe"
    notification = Notification.objects.get(kind="hometitle.change", channel="email")
    assert notification.context["documents"][0]["document_number"] == "N-1"
    assert len(mailoutbox) == 1


def test_a_release_alone_is_recorded_but_not_notified(run_worker, mailoutbox):
    from django.utils import timezone

    watched = PropertyFactory(parcel_number="14-000002", owner_names="Jane Doe")
    recordings_import(io.StringIO(RECORDINGS.format(recent=timezone.now().date().isoformat())), "csv")
    run = scan(run_worker, watched.subscription_id)
    assert (run.result["highest_severity"], run.result["notified_changes"]) == ("info", 0)
    assert not Notification.objects.exists()
    assert mailoutbox == []
