"""Periodic jobs defined in the database: saving one keeps its one schedule row and entry in step."""

import pytest
from django.core.exceptions import ValidationError

from jobs import entries
from jobs.models import PeriodicJob, Schedule
from jobs.periodic import (
    PeriodicJobProtected,
    periodic_job_create,
    periodic_job_delete,
    periodic_job_set_enabled,
    periodic_job_trigger_now,
    periodic_job_update,
    scheduling_pause,
    scheduling_resume,
)
from jobs.selectors import scheduling_paused

pytestmark = pytest.mark.django_db(transaction=True)
PING = {"message": "hi"}


def test_a_new_periodic_job_gets_one_schedule_and_an_entry_after_commit():
    job = periodic_job_create(name="ping every minute", job_type="jobs.ping", payload=PING, cron_expression="* * * * *")
    schedule = Schedule.objects.get(periodic_job=job)
    assert schedule.next_run_at is not None
    assert schedule.job_type == "jobs.ping"
    assert entries.entries_state([schedule.pk])[schedule.pk] == pytest.approx(schedule.next_run_at.timestamp())


def test_disabling_removes_the_entry_and_enabling_counts_from_now():
    job = periodic_job_create(name="p", job_type="jobs.ping", payload=PING, cron_expression="*/5 * * * *")
    pk = job.schedule.pk
    periodic_job_set_enabled(job, False)
    assert Schedule.objects.get(pk=pk).next_run_at is None
    assert entries.entries_state([pk])[pk] is None
    periodic_job_set_enabled(job, True)
    assert entries.entries_state([pk])[pk] is not None


def test_a_new_timing_moves_the_entry():
    job = periodic_job_create(name="p", job_type="jobs.ping", payload=PING, cron_expression="0 4 * * *")
    before = Schedule.objects.get(periodic_job=job).next_run_at
    periodic_job_update(job, cron_expression="0 5 * * *")
    after = Schedule.objects.get(periodic_job=job)
    assert after.cron_expression == "0 5 * * *"
    assert after.next_run_at != before
    assert entries.entries_state([after.pk])[after.pk] == pytest.approx(after.next_run_at.timestamp())


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"job_type": "no.such", "payload": PING}, "job_type"),
        ({"job_type": "jobs.ping", "payload": {**PING, "unexpected": 1}}, "payload"),
        ({"job_type": "jobs.ping", "payload": PING, "cron_expression": "0 0 30 2 *"}, "cron_expression"),
        ({"job_type": "jobs.ping", "payload": PING, "timezone": "Mars/Olympus"}, "timezone"),
        ({"job_type": "jobs.ping", "payload": PING, "cron_expression": "", "frequency": ""}, "cron_expression"),
        ({"job_type": "jobs.ping", "payload": PING, "retry_delays": [-1]}, "retry_delays"),
    ],
)
def test_bad_input_is_an_error_at_its_field_and_saves_nothing(fields, field):
    values = {"name": "bad", "cron_expression": "* * * * *", **fields}
    with pytest.raises(ValidationError) as caught:
        periodic_job_create(**values)
    assert field in caught.value.message_dict
    assert not PeriodicJob.objects.exists()
    assert not Schedule.objects.exists()


def test_a_builtin_job_cannot_be_deleted():
    job = periodic_job_create(name="p", job_type="jobs.ping", payload=PING, cron_expression="* * * * *")
    PeriodicJob.objects.filter(pk=job.pk).update(builtin=True)
    job.refresh_from_db()
    with pytest.raises(PeriodicJobProtected):
        periodic_job_delete(job)
    assert PeriodicJob.objects.filter(pk=job.pk).exists()


def test_deleting_removes_the_schedule_and_its_entry():
    job = periodic_job_create(name="p", job_type="jobs.ping", payload=PING, cron_expression="* * * * *")
    pk = job.schedule.pk
    periodic_job_delete(job)
    assert not Schedule.objects.filter(pk=pk).exists()
    assert entries.entries_state([pk])[pk] is None


def test_run_now_is_a_manual_run_of_the_job_with_its_retry_policy():
    job = periodic_job_create(
        name="p", job_type="jobs.ping", payload=PING, cron_expression="* * * * *", max_attempts=2, retry_delays=[7]
    )
    run = periodic_job_trigger_now(job)
    assert run.trigger == "manual"
    assert run.schedule.periodic_job == job
    assert (run.max_attempts, run.retry_delays) == (2, [7])


def test_the_switch_pauses_and_resumes():
    assert not scheduling_paused()
    scheduling_pause(reason="database maintenance")
    assert scheduling_paused()
    scheduling_resume()
    assert not scheduling_paused()


def test_two_creates_at_once_cannot_both_slip_under_a_customers_limit(settings, monkeypatch):
    """Each create counts the customer's jobs, then saves; the customer's row lock makes the second
    count wait for the first save (PostgreSQL; SQLite runs one writer at a time anyway)."""
    import contextlib
    import threading

    from django.db import connection

    import jobs.periodic
    from tests.factories import SubscriptionFactory

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time anyway")
    settings.JOBS_PERIODIC_JOBS_PER_CUSTOMER = 1
    subscription = SubscriptionFactory()
    customer = subscription.user
    both_counted = threading.Barrier(2, timeout=1)
    real_save = jobs.periodic.periodic_job_save

    def save_after_both_counted(job):
        with contextlib.suppress(threading.BrokenBarrierError):
            both_counted.wait()
        return real_save(job)

    monkeypatch.setattr(jobs.periodic, "periodic_job_save", save_after_both_counted)
    outcomes = []

    def create(name):
        job = PeriodicJob(
            name=name,
            job_type="reports.recent",
            payload={"subscription_id": subscription.pk},
            cron_expression="0 9 * * 1",
        )
        try:
            jobs.periodic.periodic_job_save_as(job, customer)
            outcomes.append("created")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "refused"]
    assert PeriodicJob.objects.filter(owner=customer).count() == 1
