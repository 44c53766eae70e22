"""A run that fails for good tells staff by email, once; a run that will be retried does not."""

import pytest

from jobs import enqueue
from jobs.models import JobRun
from notifications.models import Notification
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_final_failure_emails_each_staff_user_once(run_worker, mailoutbox):
    staff = UserFactory(is_staff=True, email="ops@example.com")
    UserFactory(is_staff=False, email="customer@example.com")
    run = enqueue("tests.permanent", {"message": "the vendor said no"})
    run_worker()

    assert JobRun.objects.get(pk=run.pk).status == "failed"
    notice = Notification.objects.get(kind="jobs.failed")
    assert (notice.recipient, notice.channel, notice.status) == (staff, "email", "sent")
    assert [message.to for message in mailoutbox] == [["ops@example.com"]]
    assert "tests.permanent failed" in mailoutbox[0].subject
    assert "the vendor said no" in mailoutbox[0].body


def test_a_run_that_will_be_retried_tells_nobody(run_worker, mailoutbox):
    UserFactory(is_staff=True, email="ops@example.com")
    run = enqueue("tests.fail", {"message": "try later", "retry_after": 60})
    run_worker()
    assert JobRun.objects.get(pk=run.pk).status == "retrying"
    assert not Notification.objects.filter(kind="jobs.failed").exists()
    assert mailoutbox == []
