"""Real-time monitoring: Premium edits trigger one scan per burst; other tiers wait for their schedule."""

import pytest
import time_machine

from jobs.models import JobRun
from scanners.darkwatch.services import watchlist_item_add, watchlist_item_update
from scanners.hometitle.services import property_add
from tests.factories import SubscriptionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tier_configs")]


def event_runs(job_type):
    return JobRun.objects.filter(job_type=job_type, trigger=JobRun.Trigger.EVENT)


def test_a_burst_of_premium_watchlist_edits_makes_one_scan(django_capture_on_commit_callbacks):
    premium = SubscriptionFactory(tier="premium")
    with time_machine.travel("2026-06-01 12:00:00+00:00", tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            item = watchlist_item_add(premium, "email", "one@example.com")
        with django_capture_on_commit_callbacks(execute=True):
            watchlist_item_add(premium, "phone", "+1 415 555 0132")
        with django_capture_on_commit_callbacks(execute=True):
            watchlist_item_update(item, label="work")
    run = event_runs("darkwatch.scan").get()
    assert run.subscription_id == premium.pk
    assert run.payload == {"subscription_id": premium.pk}
    assert run.scheduled_for.isoformat() == "2026-06-01T12:00:05+00:00"


def test_a_premium_property_edit_makes_a_title_scan(django_capture_on_commit_callbacks):
    premium = SubscriptionFactory(tier="premium")
    with django_capture_on_commit_callbacks(execute=True):
        property_add(premium, address="1 Elm St", county="sangamon", parcel_number="14-1", owner_names="Jane Doe")
    assert event_runs("hometitle.scan").count() == 1
    assert not event_runs("darkwatch.scan").exists()


@pytest.mark.parametrize("tier", ["basic", "plus"])
def test_other_tiers_do_not_scan_on_change(django_capture_on_commit_callbacks, tier):
    subscription = SubscriptionFactory(tier=tier)
    with django_capture_on_commit_callbacks(execute=True):
        watchlist_item_add(subscription, "email", "one@example.com")
        property_add(subscription, address="1 Elm St", county="sangamon", parcel_number="14-1", owner_names="J Doe")
    assert not JobRun.objects.filter(trigger=JobRun.Trigger.EVENT).exists()
