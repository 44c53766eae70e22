"""Writes for schedules: keep Schedule rows and their entries true to subscriptions and
configs (tier schedules) and to periodic jobs, and turn due ticks of both kinds into runs.

The database decides; Redis follows after commit. Every function here is idempotent,
so `sync_schedules` can repair whatever a missed signal or a flushed Redis left behind.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import lru_cache, partial

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from jobs import dispatch, entries, hooks
from jobs.bulk import bulk_insert_new, bulk_insert_values, bulk_update_rows, statistics_catch_up
from jobs.cron import due_tick, next_run_after, spread_cron
from jobs.errors import NextRunUnknown, NotSchedulable, PayloadInvalid, UnknownJobType
from jobs.models import (
    SCHEDULE_STATE_FILTERS,
    JobEvent,
    JobRun,
    PeriodicJob,
    Schedule,
    SchedulerConfig,
    ScheduleState,
    periodic_timing_cron,
)
from jobs.registry import ScheduleTick, registry
from kordant.models import Subscription

logger = logging.getLogger("jobs.scheduling")
Status = JobRun.Status
# Subscriptions in these states keep their schedules. Past-due customers stay protected
# while their payment is retried; only cancelling (or deleting) stops the schedules.
LIVE_STATUSES = (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)


# --- keeping schedules in step ---------------------------------------------------------


@dataclass
class SyncReport:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    entries_written: int = 0
    entries_removed: int = 0

    def __add__(self, other: SyncReport) -> SyncReport:
        return SyncReport(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def changed(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def __str__(self) -> str:
        return (
            f"schedules: {self.created} created, {self.updated} updated, {self.deleted} deleted; "
            f"entries: {self.entries_written} written, {self.entries_removed} removed"
        )


def schedule_sync_for_subscription(subscription_id: int) -> SyncReport:
    """Make one subscription's schedules and entries match its tier and status."""
    row = Subscription.objects.filter(pk=subscription_id).values_list("id", "tier", "status", "timezone").first()
    if row is None:
        return schedules_remove_for_subscription(subscription_id)
    return _sync_subscriptions([row], _SyncClock(timezone.now()))


def schedules_remove_for_subscription(subscription_id: int) -> SyncReport:
    """Delete a subscription's schedules; their entries go when the deletion commits."""
    _, deleted = Schedule.objects.filter(subscription_id=subscription_id).delete()
    return SyncReport(deleted=deleted.get(Schedule._meta.label, 0))


def schedules_sync_tier(tier: str, *, batch_size: int = 10_000, progress: Callable | None = None) -> SyncReport:
    """Re-sync every subscription of one tier (after its configs changed), in batches."""
    subscriptions = Subscription.objects.filter(tier=tier)
    return _sync_in_batches(subscriptions, batch_size=batch_size, progress=progress)


def schedules_with_entries():
    """The schedule rows (tier and periodic) that should each have an entry in Redis."""
    return Schedule.objects.filter(SCHEDULE_STATE_FILTERS[ScheduleState.ACTIVE])


def schedules_sync_all(*, batch_size: int = 10_000, progress: Callable | None = None) -> SyncReport:
    """Rebuild every schedule and entry from the database; report what had to change."""
    entries.entries_mark_built()
    report = _sync_in_batches(Subscription.objects.all(), batch_size=batch_size, progress=progress)
    report += periodic_schedules_sync(batch_size=batch_size)
    schedules_record_outcomes()
    # Entries whose row is gone (deleted behind the ORM's back, or a lost commit hook).
    # Every wanted entry is in place now, so if the set holds no more members than
    # that, there is nothing stray and no need to read 100,000 members back.
    live = schedules_with_entries()
    if entries.entry_count() > live.count():
        stray = entries.entry_pks() - set(live.values_list("pk", flat=True).iterator(10_000))
        report.entries_removed += entries.entries_remove(stray)
    return report


def periodic_schedules_sync(*, batch_size: int = 10_000) -> SyncReport:
    """Make every periodic job's schedule row and entry match the job, in batches.

    What the services do one job at a time (jobs/periodic.py), for rows written behind
    their back (a bulk insert, a data migration, a lost commit hook) and a flushed Redis:
    a job without its row gets one; a row whose timing no longer matches its job counts
    from now; a disabled job's row has no next run and no entry.
    """
    clock = _SyncClock(timezone.now())
    report = SyncReport()
    columns = ("pk", "job_type", "frequency", "cron_expression", "timezone", "enabled")
    missing = list(PeriodicJob.objects.filter(schedule__isnull=True).values_list(*columns))
    for start in range(0, len(missing), batch_size):
        report += periodic_schedules_create(missing[start : start + batch_size], clock=clock)
    rows = (
        Schedule.objects.filter(periodic_job__isnull=False)
        .order_by("pk")
        .values_list(
            "pk",
            "cron_expression",
            "timezone",
            "enabled",
            "next_run_at",
            *(f"periodic_job__{name}" for name in columns),
        )
    )
    last_pk = 0
    while batch := list(rows.filter(pk__gt=last_pk)[:batch_size]):
        last_pk = batch[-1][0]
        to_update, wanted = [], {}
        for pk, old_cron, old_tz, enabled, old_next, job_pk, job_type, frequency, cron_expression, tz, on in batch:
            cron = _periodic_cron(job_pk, job_type, frequency, cron_expression)
            next_run_at = old_next if (old_cron, old_tz) == (cron, tz) else None  # new timing: count from now
            if not on:
                next_run_at = None  # as a disabled config's schedules: no catch-up for ticks it was off
            elif enabled and next_run_at is None:
                next_run_at = clock.next_run(cron, tz)
            if (old_cron, old_tz, old_next) != (cron, tz, next_run_at):
                to_update.append((pk, cron, tz, next_run_at, clock.now))
            wanted[pk] = _entry_time(enabled, on, next_run_at)
        bulk_update_rows(Schedule, ["cron_expression", "timezone", "next_run_at", "updated_at"], to_update)
        report.updated += len(to_update)
        written, removed = _entries_follow(wanted)
        report.entries_written += written
        report.entries_removed += removed
    return report


def _periodic_cron(pk: int, job_type: str, frequency: str, cron_expression: str) -> str:
    try:
        return periodic_timing_cron(pk, job_type, frequency, cron_expression)
    except ValueError:
        # An unknown frequency written past validation: kept as the timing, which has no
        # next run, so the schedule shows as broken instead of stopping the sync.
        return frequency


# Columns written for a periodic job's new schedule row, in this order.
_NEW_PERIODIC_SCHEDULE_FIELDS = [
    "periodic_job_id",
    "cron_expression",
    "timezone",
    "enabled",
    "next_run_at",
    "run_count",
    "last_status",
    "created_at",
    "updated_at",
]


def periodic_schedules_create(jobs: Iterable[tuple], *, clock: _SyncClock | None = None) -> SyncReport:
    """Schedule rows for periodic jobs that have none, given as (pk, job_type, frequency, cron,
    timezone, enabled); their entries after commit. A constant number of queries and Redis calls."""
    clock = clock or _SyncClock(timezone.now())
    now, rows = clock.now, []
    for pk, job_type, frequency, cron_expression, tz, enabled in jobs:
        cron = _periodic_cron(pk, job_type, frequency, cron_expression)
        rows.append((pk, cron, tz, True, clock.next_run(cron, tz) if enabled else None, 0, "", now, now))
    with transaction.atomic():
        pks = bulk_insert_values(Schedule, _NEW_PERIODIC_SCHEDULE_FIELDS, rows)
        wanted = {pk: row[4] for pk, row in zip(pks, rows, strict=True) if row[4] is not None}
        transaction.on_commit(partial(entries.entries_write, wanted))
    return SyncReport(created=len(rows), entries_written=len(wanted))


def scheduler_config_sync(config_id: int) -> SyncReport | None:
    """A config changed: re-sync its tier, inline when small, as a background job when large."""
    config = SchedulerConfig.objects.filter(pk=config_id).first()
    if config is None:
        return None
    if Subscription.objects.filter(tier=config.tier).count() <= settings.JOBS_SYNC_INLINE_LIMIT:
        return schedules_sync_tier(config.tier)
    from jobs.services import enqueue

    # Edits coalesce into a sync that has not started yet: it reads the configs when it
    # runs, so it carries this edit too. A sync already running may have passed some
    # subscriptions with the configs as they were, so it is not enough: a second one is
    # queued behind it (two slots per tier; the tier's singleton key lets only one run at a
    # time, so at most one slot is ever running and the other is free or waiting).
    for slot in (f"tier:{config.tier}", f"tier:{config.tier}:next"):
        run = enqueue("jobs.sync_tier", {"tier": config.tier}, dedupe_key=slot, trigger=JobRun.Trigger.SYSTEM)
        if run.status != Status.RUNNING:
            break
    return None


def schedule_set_enabled(schedule: Schedule, enabled: bool) -> Schedule:
    """Pause or resume one schedule; a resumed one runs at its next tick from now."""
    with transaction.atomic():
        # of=self: the definitions are outer joins, which PostgreSQL will not lock.
        schedule = (
            Schedule.objects.select_for_update(of=("self",))
            .select_related("config", "periodic_job")
            .get(pk=schedule.pk)
        )
        definition_enabled = schedule.definition.enabled
        if schedule.enabled != enabled:
            schedule.enabled = enabled
            schedule.next_run_at = (
                next_run_or_none(schedule.cron_expression, schedule.timezone, timezone.now())
                if enabled and definition_enabled
                else None
            )
            schedule.save(update_fields=["enabled", "next_run_at", "updated_at"])
        transaction.on_commit(
            partial(
                _entries_follow,
                {schedule.pk: _entry_time(schedule.enabled, definition_enabled, schedule.next_run_at)},
            )
        )
    return schedule


def scheduler_config_set_enabled(config: SchedulerConfig, enabled: bool) -> SchedulerConfig:
    """Turn a tier's config on or off; its schedules follow (the save re-syncs the tier)."""
    config = SchedulerConfig.objects.get(pk=config.pk)
    if config.enabled != enabled:
        config.enabled = enabled
        config.save(update_fields=["enabled", "updated_at"])
    return config


def schedule_entry_follow(schedule: Schedule) -> None:
    """After commit: the schedule's entry follows its row (written at its next run, or removed)."""
    definition_enabled = schedule.definition.enabled
    wanted = {schedule.pk: _entry_time(schedule.enabled, definition_enabled, schedule.next_run_at)}
    try:
        _entries_follow(wanted)
    except (redis.RedisError, OSError) as exc:
        # The row is committed; sync_schedules (at start and hourly) restores the entry.
        logger.warning("schedule %s: Redis unavailable (%s); sync_schedules will restore its entry", schedule.pk, exc)


def schedule_entry_removed(schedule_id: int) -> None:
    """A schedule row was deleted: its entry goes too."""
    entries.entries_remove([schedule_id])


def _configs_by_tier(*, lock_tiers: Iterable[str]) -> dict[str, list[SchedulerConfig]]:
    """The configs of these tiers as last saved, locked until the caller's transaction ends."""
    by_tier: dict[str, list[SchedulerConfig]] = defaultdict(list)
    # In pk order, so two syncs locking overlapping tiers never deadlock.
    for config in SchedulerConfig.objects.select_for_update().filter(tier__in=sorted(set(lock_tiers))).order_by("pk"):
        by_tier[config.tier].append(config)
    return by_tier


def _sync_in_batches(subscriptions, *, batch_size: int, progress: Callable | None) -> SyncReport:
    clock = _SyncClock(timezone.now())
    total = subscriptions.count()
    report = SyncReport()
    done = 0
    rows = subscriptions.order_by("pk").values_list("id", "tier", "status", "timezone")
    last_pk = 0
    while True:
        batch = list(rows.filter(pk__gt=last_pk)[:batch_size])
        if not batch:
            break
        report += _sync_subscriptions(batch, clock)
        last_pk = batch[-1][0]
        done += len(batch)
        if progress:
            progress(100 * done / max(total, 1), f"{done} of {total} subscriptions")
    return report


# (cron, zone) pairs already logged as having no computable next run: a broken row is
# logged once per process, not on every sync.
_reported_broken: set[tuple[str, str]] = set()


def next_run_or_none(cron: str, tz: str, after: datetime) -> datetime | None:
    """next_run_after, or None (logged once) when it cannot be computed: one broken row
    (written past validation) must not stop a sync, a save or the scheduler for the others."""
    try:
        return next_run_after(cron, tz, after)
    except NextRunUnknown as exc:
        _report_broken(cron, tz, exc)
        return None


def _report_broken(cron: str, tz: str, exc: Exception) -> None:
    if (cron, tz) not in _reported_broken:
        _reported_broken.add((cron, tz))
        logger.error(
            "schedules with cron %r in %s have no next run and are skipped (shown as broken in the admin): %s",
            cron,
            tz,
            exc,
        )


def _desired_cron(config: SchedulerConfig, subscription_id: int) -> str:
    if config.frequency:
        try:
            return spread_cron(config.frequency, subscription_id, config.job_type)
        except ValueError:
            # An unknown frequency written past validation: kept as the timing, which has
            # no next run, so the schedule shows as broken instead of stopping the sync.
            return config.frequency
    return config.cron_expression


def _entry_time(enabled: bool, config_enabled: bool, next_run_at: datetime | None) -> datetime | None:
    """When a schedule's entry should fire, or None when it should have no entry
    (paused, its config disabled, or no next run)."""
    return next_run_at if enabled and config_enabled else None


# Columns written for a new schedule, in this order (tuples, not model instances: a sync
# of 100,000 subscriptions creates several hundred thousand rows).
_NEW_SCHEDULE_FIELDS = [
    "subscription_id",
    "config_id",
    "cron_expression",
    "timezone",
    "enabled",
    "next_run_at",
    "last_run_at",
    "run_count",
    "last_status",
    "last_run_id",
    "created_at",
    "updated_at",
]


class _SyncClock:
    """One sync's "now", and next runs from it: many subscriptions share a (cron, zone) pair,
    e.g. every hourly one at minute 7 in UTC, and each pair is computed once per sync."""

    def __init__(self, now: datetime):
        self.now = now
        self.next_run = lru_cache(maxsize=None)(lambda cron, tz: next_run_or_none(cron, tz, now))


def _sync_subscriptions(subscriptions: list[tuple], clock: _SyncClock) -> SyncReport:
    """Sync a batch of (id, tier, status, timezone) rows: a constant number of queries and Redis calls.

    Syncs of the same subscriptions may run at once (an admin edit's sync while another
    runs, two web processes, the hourly sync). Each batch locks its tiers' configs
    (SELECT ... FOR UPDATE; a config save waits for the batch, and the batch for the
    save) and reads them, and the rows it will change, under that lock. So batches of a
    tier take turns, a later one sees the rows an earlier one created (no duplicate
    insert), and every batch works from the configs as last saved, never from a copy
    read when its sync began. Entries then follow the committed rows under the same
    lock, so the sync that wrote the rows last also writes Redis last.
    """
    tiers = {row[1] for row in subscriptions}
    with transaction.atomic():
        report = _sync_rows(subscriptions, _configs_by_tier(lock_tiers=tiers), clock)
    with transaction.atomic():
        _configs_by_tier(lock_tiers=tiers)
        report.entries_written, report.entries_removed = _entries_follow(_entry_times(subscriptions))
    return report


def _entry_times(subscriptions: list[tuple]) -> dict[int, datetime | None]:
    """For each schedule row of these subscriptions: when its entry should fire, or None for no entry."""
    ids = [row[0] for row in subscriptions]
    in_batch = set(ids)
    rows = Schedule.objects.filter(subscription_id__gte=min(ids), subscription_id__lte=max(ids)).values_list(
        "subscription_id", "pk", "enabled", "config__enabled", "next_run_at"
    )
    return {
        pk: _entry_time(enabled, config_enabled, next_run_at)
        for subscription_id, pk, enabled, config_enabled, next_run_at in rows
        if subscription_id in in_batch
    }


def _sync_rows(subscriptions: list[tuple], configs: dict[str, list[SchedulerConfig]], clock: _SyncClock) -> SyncReport:
    """Bring a batch's schedule rows in line with `configs`; entries are the caller's."""
    now, next_run = clock.now, clock.next_run
    ids = [row[0] for row in subscriptions]
    # (subscription, config) -> (pk, cron, timezone, enabled, next run)
    # Batches are pk-ordered, so a range finds their rows without binding 10,000 ids; rows
    # of subscriptions in the range but not in the batch (another tier) are left alone.
    in_batch = set(ids)
    existing = {
        (subscription_id, config_id): rest
        for subscription_id, config_id, *rest in Schedule.objects.filter(
            subscription_id__gte=min(ids), subscription_id__lte=max(ids)
        ).values_list("subscription_id", "config_id", "id", "cron_expression", "timezone", "enabled", "next_run_at")
        if subscription_id in in_batch
    }
    to_create: list[tuple] = []
    to_update: list[tuple] = []
    for subscription_id, tier, status, tz in subscriptions:
        if status not in LIVE_STATUSES:
            continue
        for config in configs.get(tier, ()):
            cron = _desired_cron(config, subscription_id)
            found = existing.pop((subscription_id, config.pk), None)
            if found is None:
                next_run_at = next_run(cron, tz) if config.enabled else None
                to_create.append((subscription_id, config.pk, cron, tz, True, next_run_at, None, 0, "", None, now, now))
                continue
            pk, old_cron, old_tz, enabled, old_next = found
            next_run_at = old_next if (old_cron, old_tz) == (cron, tz) else None  # new timing: count from now
            if not config.enabled:
                # A disabled config's schedules have no next run: enabling it starts them from
                # now, instead of a catch-up run for every tick the operator switched off.
                next_run_at = None
            elif enabled and next_run_at is None:
                next_run_at = next_run(cron, tz)
            if (old_cron, old_tz, old_next) != (cron, tz, next_run_at):
                to_update.append((pk, cron, tz, next_run_at, now))
    stale = [found[0] for found in existing.values()]  # rows no config of the tier wants any more

    with transaction.atomic():
        if stale:
            # Entries of deleted rows are removed by the post_delete receiver, after commit.
            Schedule.objects.filter(pk__in=stale).delete()
        bulk_insert_values(Schedule, _NEW_SCHEDULE_FIELDS, to_create, returning=False)
        bulk_update_rows(Schedule, ["cron_expression", "timezone", "next_run_at", "updated_at"], to_update)
        if to_create or to_update:
            hooks.schedules_written.send(
                Schedule, created=partial(_created_ids, to_create), updated=[row[0] for row in to_update]
            )

    return SyncReport(created=len(to_create), updated=len(to_update), deleted=len(stale))


def _created_ids(to_create: list[tuple]) -> list[int]:
    """The ids of rows just written from `to_create` (the bulk insert did not return them)."""
    pairs = {(row[0], row[1]) for row in to_create}
    rows = Schedule.objects.filter(
        subscription_id__in={pair[0] for pair in pairs}, config_id__in={pair[1] for pair in pairs}
    ).values_list("pk", "subscription_id", "config_id")
    return [pk for pk, subscription_id, config_id in rows if (subscription_id, config_id) in pairs]


def _entries_follow(wanted: dict[int, datetime | None]) -> tuple[int, int]:
    """Bring entries in line with `wanted` (pk → next run, or None for no entry); return (written, removed)."""
    if not wanted:
        return 0, 0
    state = entries.entries_state(list(wanted))
    to_write = {
        pk: at
        for pk, at in wanted.items()
        if at is not None and (state[pk] is None or abs(state[pk] - at.timestamp()) > 0.001)
    }
    to_remove = [pk for pk, at in wanted.items() if at is None and state[pk] is not None]
    entries.entries_write(to_write)
    return len(to_write), entries.entries_remove(to_remove)


# --- firing ----------------------------------------------------------------------------


@dataclass
class FireReport:
    queued: int = 0
    skipped: int = 0
    failed: int = 0
    duplicate: int = 0  # another scheduler made the run for this tick first
    moved: int = 0  # entries whose row said "not yet": re-scored, nothing fired
    removed: int = 0  # entries with no enabled row behind them
    broken: int = 0  # due, but their next run cannot be computed: stopped, not fired

    def __add__(self, other: FireReport) -> FireReport:
        return FireReport(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def fired(self) -> int:
        return self.queued + self.skipped + self.failed

    def __str__(self) -> str:
        return ", ".join(f"{f.name} {getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name))


def schedule_fire(schedule_id: int) -> str:
    """The function an entry names: fire one due schedule (what a stock rq-scheduler runs)."""
    from jobs.selectors import scheduling_paused

    schedule = Schedule.objects.select_related("config", "periodic_job").filter(pk=schedule_id).first()
    if schedule is not None and scheduling_paused():
        # Nothing fires while paused; the entry comes back a little later and fires (under
        # its catch-up policy) on the first look after the resume.
        if at := _entry_time(schedule.enabled, schedule.definition.enabled, schedule.next_run_at):
            entries.entries_write({schedule.pk: max(at, timezone.now() + PAUSED_RECHECK)})
        return "scheduling is paused"
    report = schedules_fire([schedule_id])
    # A stock scheduler removed the entry when it enqueued us; put it back for the next tick.
    schedule = Schedule.objects.select_related("config", "periodic_job").filter(pk=schedule_id).first()
    if schedule is not None and (
        at := _entry_time(schedule.enabled, schedule.definition.enabled, schedule.next_run_at)
    ):
        entries.entries_write({schedule.pk: at})
    return str(report)


# How often a stock rq-scheduler looks again at an entry that fell due while scheduling was paused.
PAUSED_RECHECK = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class _Definition:
    """What a tick needs of a schedule's definition, its tier's config or its periodic job:
    one shape for both, so one pass fires both under the same rules."""

    job_type: str
    enabled: bool
    priority: str
    overlap: str
    catch_up: str
    frequency: str
    periodic: bool = False
    payload: dict | None = None  # a periodic job's stored payload (a tier's comes from its type)
    max_attempts: int | None = None  # None: the job type's
    retry_delays: list | None = None  # None: the job type's
    owner_id: int | None = None

    @classmethod
    def of_config(cls, config: SchedulerConfig) -> _Definition:
        return cls(config.job_type, config.enabled, config.priority, config.overlap, config.catch_up, config.frequency)


# A periodic job's columns, read in the same query as its schedule row (a LEFT JOIN: no
# query per row), in _Definition's field order after `periodic`.
_PERIODIC_COLUMNS = (
    "periodic_job__job_type",
    "periodic_job__enabled",
    "periodic_job__priority",
    "periodic_job__overlap",
    "periodic_job__catch_up",
    "periodic_job__frequency",
    "periodic_job__payload",
    "periodic_job__max_attempts",
    "periodic_job__retry_delays",
    "periodic_job__owner_id",
)


@dataclass(frozen=True)
class _Tickable:
    """What firing needs of a schedule row: read as a tuple, 10,000 at a time."""

    pk: int
    subscription_id: int | None
    cron_expression: str
    timezone: str
    enabled: bool
    next_run_at: datetime | None
    run_count: int
    definition: _Definition

    @property
    def wants_entry(self) -> bool:
        return _entry_time(self.enabled, self.definition.enabled, self.next_run_at) is not None


def _tickables(ids: list[int]) -> dict[int, _Tickable]:
    """The rows of these schedules with their definitions: two queries, whatever the mix of kinds."""
    configs = {config.pk: _Definition.of_config(config) for config in SchedulerConfig.objects.all()}
    tickables = {}
    for row in Schedule.objects.filter(pk__in=ids).values_list(
        "id",
        "subscription_id",
        "cron_expression",
        "timezone",
        "enabled",
        "next_run_at",
        "run_count",
        "config_id",
        "periodic_job_id",
        *_PERIODIC_COLUMNS,
    ):
        config_id, periodic_job_id = row[7], row[8]
        if periodic_job_id is not None:
            (job_type, enabled, priority, overlap, catch_up, frequency, *policy) = row[9:]
            definition = _Definition(job_type, enabled, priority, overlap, catch_up, frequency, True, *policy)
        else:
            definition = configs[config_id]
        tickables[row[0]] = _Tickable(*row[:7], definition=definition)
    return tickables


def schedules_fire(schedule_ids: Iterable[int], *, now: datetime | None = None) -> FireReport:
    """Fire due schedules, tier and periodic alike, in bulk: one run per tick (database-unique),
    overlap and catch-up policies, one push.

    Safe to call twice for the same tick, or from two schedulers at once: the second
    insert of a tick's run is ignored by the (schedule, planned_for) constraint.
    """
    now = now or timezone.now()
    ids = list(dict.fromkeys(schedule_ids))
    report = FireReport()
    schedules = _tickables(ids)
    unwanted = [pk for pk in ids if pk not in schedules or not schedules[pk].wants_entry]
    report.removed = entries.entries_remove(unwanted)
    early = {pk: s.next_run_at for pk, s in schedules.items() if s.wants_entry and s.next_run_at > now}
    entries.entries_move(early)
    report.moved = len(early)
    due = [s for s in schedules.values() if s.wants_entry and s.next_run_at <= now]
    if not due:
        return report

    busy = set(
        JobRun.objects.filter(schedule_id__in=[s.pk for s in due], status__in=JobRun.ACTIVE_STATUSES).values_list(
            "schedule_id", flat=True
        )
    )
    late_after = now - timedelta(seconds=settings.JOBS_CATCH_UP_GRACE_SECONDS)
    runs: list[dict] = []  # JobRun columns by attname: 10,000 model instances would cost more
    following: dict[int, datetime] = {}
    broken: list[int] = []
    for schedule in due:
        try:
            planned, following[schedule.pk] = due_tick(
                schedule.cron_expression, schedule.timezone, schedule.next_run_at, now
            )
        except NextRunUnknown as exc:
            # Written past validation: this one stops (no next run, no entry), the others fire.
            _report_broken(schedule.cron_expression, schedule.timezone, exc)
            broken.append(schedule.pk)
            continue
        missed = schedule.definition.catch_up == SchedulerConfig.CatchUp.NONE and planned < late_after
        runs.append(_tick_run(schedule, planned, now, overlapping=schedule.pk in busy, missed=missed))
    if broken:
        Schedule.objects.filter(pk__in=broken).update(next_run_at=None, updated_at=now)
        entries.entries_remove(broken)
        report.broken = len(broken)

    with transaction.atomic():
        made = bulk_insert_new(JobRun, runs)
        statistics_catch_up(JobRun, len(made))  # before the events' and schedules' checks use its plan
        runs = [run for run in runs if run["id"] in made]
        report.duplicate = len(due) - len(broken) - len(runs)
        _record_tick_events(runs, now)
        bulk_update_rows(
            Schedule,
            ["last_run", "last_run_at", "last_status", "run_count", "next_run_at", "updated_at"],
            [
                (
                    run["schedule_id"],
                    run["id"],
                    run["planned_for"],
                    run["status"],
                    schedules[run["schedule_id"]].run_count + (run["status"] != Status.SKIPPED),
                    following[run["schedule_id"]],
                    now,
                )
                for run in runs
            ],
        )
        to_push = [run for run in runs if run["status"] == Status.QUEUED]
        transaction.on_commit(partial(_push, to_push))
    report.queued = len(to_push)
    report.skipped = sum(run["status"] == Status.SKIPPED for run in runs)
    report.failed = sum(run["status"] == Status.FAILED for run in runs)
    entries.entries_move(following)
    return report


def _push(runs: list[dict]) -> None:
    # Tick runs are written as queued, saving a second write of every row; if Redis
    # refuses them now, the recovery pass pushes queued runs it cannot find there.
    try:
        dispatch.push([dispatch.Dispatch(str(run["id"]), run["queue"], run["timeout"]) for run in runs])
    except (redis.RedisError, OSError) as exc:
        logger.warning("Redis unavailable, %d tick run(s) wait for the recovery pass: %s", len(runs), exc)


def _tick_run(
    schedule: _Tickable, planned: datetime, now: datetime, *, overlapping: bool, missed: bool = False
) -> dict:
    """The run for one tick, as columns: queued; or skipped (overlap, or a tick missed under
    catch-up "none"); or failed (type missing or payload refused).

    A tier schedule's payload comes from its job type for the tick; a periodic job's is its
    stored payload, validated again here (a type's schema may have changed since it was saved).
    """
    from jobs.services import job_run_columns

    definition = schedule.definition
    run = job_run_columns(
        job_type=definition.job_type,
        status=Status.QUEUED,
        queue=definition.priority or "default",
        trigger=JobRun.Trigger.CRON,
        subscription_id=schedule.subscription_id,
        user_id=definition.owner_id,
        schedule_id=schedule.pk,
        planned_for=planned,
        timeout=600,
        created_at=now,
        enqueued_at=now,
        updated_at=now,
    )
    try:
        job_type = registry.get(definition.job_type)
        if definition.periodic:
            payload = job_type.validate(definition.payload)
        else:
            tick = ScheduleTick(schedule.subscription_id, planned, definition.frequency, schedule.timezone)
            payload = job_type.validate(job_type.scheduled_payload(tick))
    except (UnknownJobType, NotSchedulable, PayloadInvalid) as exc:
        # Visible, not silent: the operator sees which tick could not run and why.
        run.update(status=Status.FAILED, finished_at=now, enqueued_at=None, error=str(exc))
        run["error_type"] = type(exc).__name__
        return run
    run.update(
        payload=payload.model_dump(mode="json"),
        queue=definition.priority or job_type.queue,
        timeout=job_type.timeout,
        max_attempts=definition.max_attempts or job_type.max_attempts,
        retry_delays=definition.retry_delays,
        singleton_key=job_type.keys_for(payload)["singleton_key"],
    )
    if missed:
        # Kept as a skipped run, not dropped: the tick's (schedule, planned_for) slot is taken,
        # so a second scheduler cannot run it, and the operator sees why nothing ran.
        late = int((now - planned).total_seconds())
        run.update(
            status=Status.SKIPPED,
            finished_at=now,
            enqueued_at=None,
            error=f"missed by {late} s (more than JOBS_CATCH_UP_GRACE_SECONDS = "
            f"{settings.JOBS_CATCH_UP_GRACE_SECONDS}); its catch-up policy runs no missed tick",
        )
    elif overlapping and definition.overlap == SchedulerConfig.Overlap.SKIP:
        run.update(status=Status.SKIPPED, finished_at=now, enqueued_at=None)
    return run


def _record_tick_events(runs: list[dict], now: datetime) -> None:
    messages = {
        Status.QUEUED: "queued for tick {at}",
        Status.SKIPPED: "tick {at} skipped: {error}",
        Status.FAILED: "tick {at} could not run: {error}",
    }
    overlap = "the previous run of this schedule is still active"
    bulk_insert_values(
        JobEvent,
        ["job_run_id", "at", "status", "attempt", "worker", "message"],
        [
            (
                run["id"],
                now,
                run["status"],
                0,
                "",
                messages[run["status"]].format(at=run["planned_for"].isoformat(), error=run["error"] or overlap),
            )
            for run in runs
        ],
        returning=False,
    )


def schedules_record_outcomes(*, since: datetime | None = None) -> int:
    """Copy the final status of each schedule's last run onto the schedule; return how many changed.

    The scheduler calls this every pass for runs finished in the last minute (the
    finished_at index keeps that cheap), and a full sync for all of them, so the
    runner itself needs to know nothing about schedules.
    """
    stale = Schedule.objects.filter(last_run__status__in=JobRun.FINAL_STATUSES).exclude(
        last_status=F("last_run__status")
    )
    if since is not None:
        stale = stale.filter(last_run__finished_at__gte=since)
    final = JobRun.objects.filter(pk=OuterRef("last_run_id")).values("status")[:1]
    return Schedule.objects.filter(pk__in=stale.values("pk")).update(last_status=Subquery(final))


# --- runs outside the timing -----------------------------------------------------------


def schedule_trigger_now(schedule: Schedule, *, user=None) -> JobRun:
    """Run a schedule's job now, as a manual run; the schedule's timing stays as it was."""
    from jobs.services import enqueue

    schedule = Schedule.objects.select_related("config", "periodic_job").get(pk=schedule.pk)
    if schedule.is_periodic:
        from jobs.periodic import periodic_job_trigger_now

        return periodic_job_trigger_now(schedule.periodic_job, user=user)
    job_type = registry.get(schedule.config.job_type)
    tick = ScheduleTick(schedule.subscription_id, None, schedule.config.frequency, schedule.timezone)
    with transaction.atomic():
        run = enqueue(
            job_type.name,
            job_type.scheduled_payload(tick),
            priority=schedule.config.priority or None,
            user=user,
            subscription=schedule.subscription,
            trigger=JobRun.Trigger.MANUAL,
            schedule=schedule,
        )
    return run


def scheduler_config_trigger_count(config: SchedulerConfig) -> int:
    """How many runs `scheduler_config_trigger_now` would create (for a confirmation page)."""
    return Subscription.objects.filter(tier=config.tier, status__in=LIVE_STATUSES).count()


def scheduler_config_trigger_now(config: SchedulerConfig, *, user=None, batch_size: int = 5000) -> int:
    """Run a config's job now for every live subscription of its tier (fan-out); return how many."""
    from jobs.services import EnqueueRequest, enqueue_many

    job_type = registry.get(config.job_type)
    subscriptions = Subscription.objects.filter(tier=config.tier, status__in=LIVE_STATUSES).order_by("pk")
    created = 0
    last_pk = 0
    while True:
        batch = list(subscriptions.filter(pk__gt=last_pk).only("pk", "timezone")[:batch_size])
        if not batch:
            return created
        runs = enqueue_many(
            [
                EnqueueRequest(
                    job_type.name,
                    job_type.scheduled_payload(
                        ScheduleTick(subscription.pk, None, config.frequency, subscription.timezone)
                    ),
                    priority=config.priority or None,
                    user=user,
                    subscription=subscription,
                    trigger=JobRun.Trigger.MANUAL,
                )
                for subscription in batch
            ]
        )
        created += len(runs)
        last_pk = batch[-1].pk


def schedule_trigger_event(subscription: Subscription, job_type: str, reason: str) -> JobRun | None:
    """Real-time monitoring: run `job_type` soon for this subscription because something changed.

    Only when its tier's config for that type runs on change. A burst of edits makes
    one run: the run waits a few seconds and shares a dedupe key until it starts.
    """
    from jobs.services import enqueue

    if subscription.status not in LIVE_STATUSES:
        return None
    config = SchedulerConfig.objects.filter(
        tier=subscription.tier, job_type=job_type, enabled=True, run_on_change=True
    ).first()
    if config is None:
        return None
    declared = registry.get(job_type)
    tick = ScheduleTick(subscription.pk, None, config.frequency, subscription.timezone)
    logger.info("subscription %s: %s on change (%s)", subscription.pk, job_type, reason)
    return enqueue(
        job_type,
        declared.scheduled_payload(tick),
        priority=config.priority or None,
        delay=timedelta(seconds=settings.JOBS_EVENT_COALESCE_SECONDS),
        dedupe_key=f"on-change:{subscription.pk}",
        subscription=subscription,
        trigger=JobRun.Trigger.EVENT,
    )


def schedule_trigger_event_for(subscription_id: int, job_type: str, reason: str) -> JobRun | None:
    """`schedule_trigger_event` for a subscription id, as signal receivers have it; None if it is gone."""
    subscription = Subscription.objects.filter(pk=subscription_id).first()
    return schedule_trigger_event(subscription, job_type, reason) if subscription else None


# --- the scheduler's own clock ---------------------------------------------------------

HEARTBEAT_KEY = "kordant:scheduler:heartbeat"


def scheduler_heartbeat_write(
    name: str, *, last_pass_seconds: float, fired: int, paused: bool = False, connection=None
) -> None:
    """Say the scheduler is alive, what its last pass did and whether scheduling is paused;
    the key expires if it stops."""
    connection = connection or entries.redis_connection()
    connection.hset(
        HEARTBEAT_KEY,
        mapping={
            "at": time.time(),
            "name": name,
            "pid": os.getpid(),  # which process is active when several wait on the lock
            "last_pass_seconds": last_pass_seconds,
            "fired": fired,
            # What the pass found on the switch: "paused" means it fired nothing on purpose.
            "paused": int(paused),
        },
    )
    connection.expire(HEARTBEAT_KEY, 300)
