"""Config edits and tier syncs under concurrency: the last saved config wins, and two syncs
of one tier at once neither fail nor leave duplicates."""

import threading

import pytest
from django.db import close_old_connections, connection

from jobs import entries
from jobs.context import JobContext
from jobs.models import JobRun, Schedule, SchedulerConfig
from jobs.scheduling import schedules_sync_tier
from kordant.models import Subscription
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def crons(tier: str, job_type: str) -> set[str]:
    rows = Schedule.objects.filter(config__tier=tier, config__job_type=job_type)
    return set(rows.values_list("cron_expression", flat=True))


def test_a_config_edit_saved_while_its_tiers_sync_runs_wins(settings, run_worker, monkeypatch):
    # The issue: "30 4" then "45 5" half a second later on a large tier; the second save's
    # sync was deduplicated into the running one, which had read "30 4", so "30 4" stayed.
    settings.JOBS_SYNC_INLINE_LIMIT = 1  # a "large" tier: the sync runs as a background job
    config = SchedulerConfig.objects.create(tier="plus", job_type="jobs.ping", cron_expression="0 0 1 1 *")
    subscriptions = [SubscriptionFactory(tier="plus") for _ in range(3)]
    JobRun.objects.filter(job_type="jobs.sync_tier").delete()
    config.cron_expression = "30 4 * * *"
    config.save()

    edited = []
    real_progress = JobContext.progress

    def operator_edits_meanwhile(ctx, percent, message=""):
        # While the first sync is running (it reports progress after its batch), the
        # operator saves the config again.
        if not edited:
            edited.append(True)
            again = SchedulerConfig.objects.get(pk=config.pk)
            again.cron_expression = "45 5 * * *"
            again.save()
        return real_progress(ctx, percent, message)

    monkeypatch.setattr(JobContext, "progress", operator_edits_meanwhile)
    run_worker()

    assert edited, "the sync never ran"
    assert crons("plus", "jobs.ping") == {"45 5 * * *"}
    rows = Schedule.objects.filter(config=config)
    assert rows.count() == len(subscriptions)
    # Redis follows the rows: each entry is at its row's next run.
    state = entries.entries_state([row.pk for row in rows])
    assert {pk: score for pk, score in state.items()} == {row.pk: row.next_run_at.timestamp() for row in rows}
    assert all(row.next_run_at.hour == 5 and row.next_run_at.minute == 45 for row in rows)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a race between two real database sessions")
def test_two_syncs_of_one_tier_at_once_are_safe(tier_configs):
    # Subscriptions written behind the signals' back: none has its schedules yet, so both
    # syncs want to create the same rows.
    user = UserFactory()
    Subscription.objects.bulk_create(
        [Subscription(user=user, tier="premium", timezone="UTC") for _ in range(3000)], batch_size=1000
    )
    configs = SchedulerConfig.objects.filter(tier="premium").count()
    barrier = threading.Barrier(2)
    errors = []

    def sync():
        try:
            barrier.wait()
            schedules_sync_tier("premium")
        except Exception as exc:  # the test reports it below
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=sync) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Schedule.objects.count() == 3000 * configs
    enabled = Schedule.objects.filter(config__enabled=True, next_run_at__isnull=False)
    assert entries.entry_pks() == set(enabled.values_list("pk", flat=True))
