"""jobs/models.py: a schedule's state, as a property and as the admin's and the API's query filters."""

import itertools

import pytest
from django.utils import timezone

from jobs.models import SCHEDULE_STATE_FILTERS, Schedule, SchedulerConfig, ScheduleState
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

EXPECTED = {
    # (schedule enabled, config enabled, has a next run): state
    (True, True, True): ScheduleState.ACTIVE,
    (True, True, False): ScheduleState.BROKEN,
    (True, False, True): ScheduleState.WAITING,
    (True, False, False): ScheduleState.WAITING,
    (False, True, True): ScheduleState.PAUSED,
    (False, True, False): ScheduleState.PAUSED,
    (False, False, True): ScheduleState.PAUSED,
    (False, False, False): ScheduleState.PAUSED,
}


def test_the_state_property_and_the_state_filters_are_one_rule():
    configs = {
        flag: SchedulerConfig.objects.create(tier=tier, job_type="jobs.ping", frequency="daily", enabled=flag)
        for flag, tier in ((True, "plus"), (False, "basic"))
    }
    made = {}
    for enabled, config_enabled, has_next in itertools.product([True, False], repeat=3):
        schedule = Schedule.objects.create(
            subscription=SubscriptionFactory(),
            config=configs[config_enabled],
            cron_expression="0 3 * * *",
            enabled=enabled,
            next_run_at=timezone.now() if has_next else None,
        )
        made[schedule.pk] = (enabled, config_enabled, has_next)

    for schedule in Schedule.objects.filter(pk__in=made).select_related("config"):
        expected = EXPECTED[made[schedule.pk]]
        assert schedule.state == expected, made[schedule.pk]
        matching = [
            state
            for state, rule in SCHEDULE_STATE_FILTERS.items()
            if Schedule.objects.filter(rule, pk=schedule.pk).exists()
        ]
        assert matching == [expected], made[schedule.pk]
    assert set(SCHEDULE_STATE_FILTERS) == set(ScheduleState)
