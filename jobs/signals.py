"""Thin receivers: each hands one service the id of what changed, after the transaction commits.

Whatever they can miss (bulk updates, raw SQL, a flushed Redis) `manage.py sync_schedules`
repairs; the scheduler runs it at start.
"""

from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from jobs import scheduling
from jobs.models import Schedule, SchedulerConfig
from kordant.models import Subscription


@receiver(post_save, sender=Subscription, dispatch_uid="jobs.subscription_saved")
def subscription_saved(sender, instance, **kwargs):
    # Created, tier, status or timezone changed: one idempotent sync covers them all.
    transaction.on_commit(partial(scheduling.schedule_sync_for_subscription, instance.pk))


@receiver(post_save, sender=SchedulerConfig, dispatch_uid="jobs.scheduler_config_saved")
def scheduler_config_saved(sender, instance, **kwargs):
    transaction.on_commit(partial(scheduling.scheduler_config_sync, instance.pk))


@receiver(post_delete, sender=Schedule, dispatch_uid="jobs.schedule_deleted")
def schedule_deleted(sender, instance, **kwargs):
    # Covers every way a schedule goes: a sync, a cancelled or deleted subscription
    # (cascade), a deleted config (cascade), an operator.
    transaction.on_commit(partial(scheduling.schedule_entry_removed, instance.pk))
