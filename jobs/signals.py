"""Thin receivers: each hands one service the id of what changed, after the transaction commits.

Whatever they can miss (bulk updates, raw SQL, Redis down at that moment, a flushed
Redis) `sync_schedules` repairs; the scheduler runs it at start and every hour.
"""

import logging
from functools import partial, wraps

import redis
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from jobs import scheduling
from jobs.models import Schedule, SchedulerConfig
from kordant.models import Subscription

logger = logging.getLogger("jobs.signals")


def _redis_may_be_down(service):
    # The rows are committed by now; a save must not fail because the transport is away.
    @wraps(service)
    def call(*args):
        try:
            service(*args)
        except (redis.RedisError, OSError) as exc:
            logger.warning(
                "%s%s: Redis unavailable (%s); sync_schedules will restore entries", service.__name__, args, exc
            )

    return call


@receiver(post_save, sender=Subscription, dispatch_uid="jobs.subscription_saved")
def subscription_saved(sender, instance, **kwargs):
    # Created, tier, status or timezone changed: one idempotent sync covers them all.
    transaction.on_commit(partial(_redis_may_be_down(scheduling.schedule_sync_for_subscription), instance.pk))


@receiver(post_save, sender=SchedulerConfig, dispatch_uid="jobs.scheduler_config_saved")
def scheduler_config_saved(sender, instance, **kwargs):
    transaction.on_commit(partial(_redis_may_be_down(scheduling.scheduler_config_sync), instance.pk))


@receiver(post_delete, sender=Schedule, dispatch_uid="jobs.schedule_deleted")
def schedule_deleted(sender, instance, **kwargs):
    # Covers every way a schedule goes: a sync, a cancelled or deleted subscription
    # (cascade), a deleted config (cascade), an operator.
    transaction.on_commit(partial(_redis_may_be_down(scheduling.schedule_entry_removed), instance.pk))
