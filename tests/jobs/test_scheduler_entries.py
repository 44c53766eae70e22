"""The scheduler notices entries Redis lost, rebuilds them, and says so in the log and on the dashboard."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from jobs import entries
from jobs.models import Schedule
from jobs.scheduler import KordantScheduler
from jobs.scheduling import schedules_with_entries
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scheduler(redis_conn, tier_configs):
    for tier in ("basic", "plus", "premium"):
        SubscriptionFactory(tier=tier)
    scheduler = KordantScheduler(connection=redis_conn)
    scheduler.keep_entries_whole()  # the start-up sync
    assert entries.entry_pks() == set(schedules_with_entries().values_list("pk", flat=True))
    return scheduler


def wanted() -> set[int]:
    return set(schedules_with_entries().values_list("pk", flat=True))


def test_a_flush_is_rebuilt_on_the_next_pass_and_shown(scheduler, redis_conn, admin_client, caplog):
    redis_conn.flushdb()
    with caplog.at_level(logging.WARNING, logger="jobs.scheduler"):
        scheduler.keep_entries_whole()

    assert entries.entry_pks() == wanted()
    assert "schedule entries missing (Redis lost them" in caplog.text
    page = admin_client.get(reverse("admin:jobs_dashboard")).content.decode()
    assert 'id="kj-entries-rebuilt"' in page and "Redis lost them" in page


def test_fewer_entries_than_rows_on_two_passes_is_rebuilt(scheduler, redis_conn, caplog):
    lost = sorted(wanted())[:2]
    entries.entries_remove(lost)
    scheduler.keep_entries_whole()
    assert not entries.entry_pks() >= set(lost), "one short pass may be a row committed before its entry"

    with caplog.at_level(logging.WARNING, logger="jobs.scheduler"):
        scheduler.keep_entries_whole()

    assert entries.entry_pks() == wanted()
    record = entries.entries_rebuilt_last()
    assert record["reason"] == f"{len(wanted()) - 2} entries in Redis for {len(wanted())} enabled schedules"
    assert record["written"] == 2


def test_a_whole_set_is_not_rebuilt_again_and_again(scheduler, redis_conn, monkeypatch):
    calls = []
    monkeypatch.setattr("jobs.scheduler.schedules_sync_all", lambda: calls.append(1))
    for _ in range(3):
        scheduler.keep_entries_whole()
    assert calls == []
    assert Schedule.objects.exists()


def test_the_dashboard_says_nothing_when_nothing_was_rebuilt(scheduler, admin_client):
    page = admin_client.get(reverse("admin:jobs_dashboard")).content.decode()
    assert "kj-entries-rebuilt" not in page


@pytest.mark.parametrize("count", [1, 500, 501, 5_001])
def test_every_entry_written_is_whole_and_scored_across_the_scripts_batches(redis_conn, count):
    # The write script scores entries 500 at a time within batches of 5,000: none may be lost
    # at a boundary, and an existing entry is moved, not doubled.
    start = datetime(2027, 1, 1, tzinfo=UTC)
    entries.entries_write({pk: start + timedelta(seconds=pk) for pk in range(1, count + 1)}, connection=redis_conn)
    entries.entries_write({1: start - timedelta(days=1)}, connection=redis_conn)

    state = entries.entries_state(list(range(1, count + 1)), connection=redis_conn)
    assert entries.entry_count(connection=redis_conn) == count
    assert state[1] == (start - timedelta(days=1)).timestamp()
    assert all(state[pk] == (start + timedelta(seconds=pk)).timestamp() for pk in range(2, count + 1))
