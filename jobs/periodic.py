"""Writes for periodic jobs and for the switch that pauses all scheduling.

A periodic job is a definition (job type, payload, timing, policies) with exactly one
Schedule row, which carries its timing and bookkeeping; the scheduler fires that row
through the same pass, entries and guarantees as any tier schedule. These functions keep
the row in step with the definition, and its rq-scheduler entry with the row after commit.
"""

from __future__ import annotations

from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from jobs.bulk import bulk_insert_values
from jobs.models import JobRun, PeriodicJob, Schedule, SchedulingSwitch
from jobs.scheduling import next_run_or_none, periodic_schedules_create, schedule_entry_follow
from jobs.services import enqueue


class PeriodicJobProtected(ValidationError):
    """A built-in periodic job cannot be deleted (disable it instead)."""


def periodic_job_create(**fields) -> PeriodicJob:
    """Create a periodic job from model fields; its schedule and entry follow after commit."""
    return periodic_job_save(PeriodicJob(**fields))


def periodic_jobs_create_many(jobs: list[dict]) -> list[int]:
    """Create many periodic jobs at once (all or none), each validated as `periodic_job_create`
    validates one; their schedules in bulk, their entries after commit. Returns the new ids.

    For imports and provisioning: 100,000 jobs cost a few bulk inserts, not 100,000 saves.
    """
    instances = [PeriodicJob(**fields) for fields in jobs]
    errors = {}
    for index, job in enumerate(instances):
        try:
            # Uniqueness is checked below for the whole batch in one query, not per row.
            job.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            errors[f"jobs[{index}]"] = [
                f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
            ]
    names = [(job.owner_id, job.name) for job in instances]
    seen: set = set()
    for index, key in enumerate(names):
        if key in seen:
            errors.setdefault(f"jobs[{index}]", []).append(f"name: {key[1]!r} appears twice in this batch.")
        seen.add(key)
    taken = _names_taken(seen)
    for index, key in enumerate(names):
        if key in taken:
            errors.setdefault(f"jobs[{index}]", []).append(f"name: a periodic job named {key[1]!r} exists already.")
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    columns = [field.attname for field in PeriodicJob._meta.concrete_fields if not field.primary_key]
    rows = []
    for job in instances:
        job.created_at = job.updated_at = now
        rows.append(tuple(getattr(job, name) for name in columns))
    with transaction.atomic():
        ids = bulk_insert_values(PeriodicJob, columns, rows)
        timings = [
            (pk, job.job_type, job.frequency, job.cron_expression, job.timezone, job.enabled)
            for pk, job in zip(ids, instances, strict=True)
        ]
        for start in range(0, len(timings), _CHUNK):
            periodic_schedules_create(timings[start : start + _CHUNK])
    return ids


# Rows per query: well under SQLite's limit of bound variables.
_CHUNK = 5000


def _names_taken(keys: set[tuple[int | None, str]]) -> set[tuple[int | None, str]]:
    """Which of these (owner, name) pairs exist already, a few thousand names per query."""
    names = sorted({name for _, name in keys})
    taken = set()
    for start in range(0, len(names), _CHUNK):
        chunk = names[start : start + _CHUNK]
        taken |= set(PeriodicJob.objects.filter(name__in=chunk).values_list("owner_id", "name"))
    return taken & keys


def periodic_job_update(job: PeriodicJob, **fields) -> PeriodicJob:
    """Change a periodic job's fields; a new timing counts from now."""
    for name, value in fields.items():
        setattr(job, name, value)
    return periodic_job_save(job)


def periodic_job_save(job: PeriodicJob) -> PeriodicJob:
    """Validate (each error at its field) and save a new or changed periodic job, with its schedule."""
    job.full_clean()
    with transaction.atomic():
        job.save()
        schedule = _schedule_follow(job)
        transaction.on_commit(partial(schedule_entry_follow, schedule))
    return job


def periodic_job_set_enabled(job: PeriodicJob, enabled: bool) -> PeriodicJob:
    """Switch a periodic job on (it runs from its next tick after now) or off (no entry)."""
    with transaction.atomic():
        job = PeriodicJob.objects.select_for_update().get(pk=job.pk)
        if job.enabled != enabled:
            job.enabled = enabled
            job.save(update_fields=["enabled", "updated_at"])
        schedule = _schedule_follow(job)
        transaction.on_commit(partial(schedule_entry_follow, schedule))
    return job


def periodic_job_delete(job: PeriodicJob) -> None:
    """Delete a periodic job and its schedule (its entry goes after commit); its runs stay."""
    if job.builtin:
        raise PeriodicJobProtected(f"{job.name!r} is built in and cannot be deleted; disable it instead.")
    job.delete()


def periodic_job_trigger_now(job: PeriodicJob, *, user=None) -> JobRun:
    """Run a periodic job now, as a manual run; its timing stays as it was."""
    job = PeriodicJob.objects.select_related("schedule", "owner").get(pk=job.pk)
    return enqueue(
        job.job_type,
        job.payload,
        priority=job.priority or None,
        user=user or job.owner,
        trigger=JobRun.Trigger.MANUAL,
        schedule=job.schedule,
        max_attempts=job.max_attempts,
        retry_delays=job.retry_delays,
    )


def _schedule_follow(job: PeriodicJob) -> Schedule:
    """Create or update the job's one schedule row, in the caller's transaction.

    Like a tier config's schedules: a disabled job has no next run, and enabling it or
    changing its timing counts from now (no catch-up for ticks it was off or on another timing).
    """
    cron, tz, now = job.timing_cron, job.timezone, timezone.now()
    schedule = Schedule.objects.select_for_update().filter(periodic_job=job).first()
    if schedule is None:
        return Schedule.objects.create(
            periodic_job=job,
            cron_expression=cron,
            timezone=tz,
            next_run_at=next_run_or_none(cron, tz, now) if job.enabled else None,
        )
    next_run_at = schedule.next_run_at
    if not job.enabled:
        next_run_at = None
    elif (schedule.cron_expression, schedule.timezone) != (cron, tz) or next_run_at is None:
        next_run_at = next_run_or_none(cron, tz, now)
    if (schedule.cron_expression, schedule.timezone, schedule.next_run_at) != (cron, tz, next_run_at):
        schedule.cron_expression, schedule.timezone, schedule.next_run_at = cron, tz, next_run_at
        schedule.save(update_fields=["cron_expression", "timezone", "next_run_at", "updated_at"])
    schedule.periodic_job = job
    return schedule


# --- the switch ------------------------------------------------------------------------


def scheduling_pause(*, user=None, reason: str = "") -> SchedulingSwitch:
    """Pause all scheduling: nothing fires until resumed. Manual runs still work."""
    return _switch_set(True, user=user, reason=reason)


def scheduling_resume(*, user=None) -> SchedulingSwitch:
    """Resume scheduling: due schedules fire at the next pass, each under its catch-up policy."""
    return _switch_set(False, user=user, reason="")


def _switch_set(paused: bool, *, user, reason: str) -> SchedulingSwitch:
    with transaction.atomic():
        switch, _ = SchedulingSwitch.objects.select_for_update().get_or_create(pk=1)
        if switch.paused != paused:
            switch.paused = paused
            switch.changed_at = timezone.now()
            switch.changed_by = user
            switch.reason = reason[:300]
            switch.save()
    return switch
