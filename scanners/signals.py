"""Real-time monitoring: a watched item or property added or changed asks for a scan after commit.

Only tiers whose config runs on change (Premium) get one, and a burst of edits makes one
run: `schedule_trigger_event` decides both. The scans' own bookkeeping (last_scanned_at)
is written with queryset updates, which send no signal, so every save here is an edit.
"""

from functools import partial

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from jobs.scheduling import schedule_trigger_event_for
from scanners.darkwatch.models import WatchlistItem
from scanners.hometitle.models import Property


@receiver(post_save, sender=WatchlistItem, dispatch_uid="scanners.watchlist_item_saved")
def watchlist_item_saved(sender, instance, created, **kwargs):
    reason = f"watchlist item {instance.pk} {'added' if created else 'changed'}"
    transaction.on_commit(
        partial(schedule_trigger_event_for, instance.watchlist.subscription_id, "darkwatch.scan", reason)
    )


@receiver(post_save, sender=Property, dispatch_uid="scanners.property_saved")
def property_saved(sender, instance, created, **kwargs):
    reason = f"property {instance.pk} {'added' if created else 'changed'}"
    transaction.on_commit(partial(schedule_trigger_event_for, instance.subscription_id, "hometitle.scan", reason))
