"""Writes for periodic jobs and for the switch that pauses all scheduling.

A periodic job is a definition (job type, payload, timing, policies) with exactly one
Schedule row, which carries its timing and bookkeeping; the scheduler fires that row
through the same pass, entries and guarantees as any tier schedule. These functions keep
the row in step with the definition, and its rq-scheduler entry with the row after commit.
"""

from __future__ import annotations

from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from jobs import operators
from jobs.cron import cron_normalise
from jobs.errors import JobError, PayloadInvalid
from jobs.models import JobRun, PeriodicJob, Schedule, SchedulingSwitch
from jobs.registry import registry
from jobs.scheduling import next_run_or_none, schedule_entry_follow
from jobs.services import enqueue


class PeriodicJobProtected(ValidationError):
    """A built-in periodic job cannot be deleted (disable it instead)."""


class NotOpenToCustomers(JobError):
    """A customer named a job type that customers may not schedule for themselves."""


def periodic_job_create(**fields) -> PeriodicJob:
    """Create a periodic job from model fields; its schedule and entry follow after commit."""
    return periodic_job_save(PeriodicJob(**fields))


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


def periodic_job_save_as(job: PeriodicJob, user) -> PeriodicJob:
    """Save a periodic job on someone's behalf: staff who may change periodic jobs as given;
    anyone else as a customer, owning it, under the customer rules and limit."""
    if operators.may_change_others(user, PeriodicJob):
        return periodic_job_save(job)
    if job._state.adding:
        job.owner = user
    customer_rules_check(job, user)
    with transaction.atomic():
        if job._state.adding:
            # The customer's row is the lock: two creates at once count one after the other.
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            owned = PeriodicJob.objects.filter(owner=user).count()
            limit = settings.JOBS_PERIODIC_JOBS_PER_CUSTOMER
            if owned >= limit:
                raise ValidationError(
                    f"You have {owned} periodic jobs, the most a customer may have ({limit}); delete one first."
                )
        return periodic_job_save(job)


def customer_rules_check(job: PeriodicJob, user) -> None:
    """What a customer may put on a periodic job of their own, or why not.

    Only types that declare a customer check (their payload must name the customer's own
    objects), on the type's own queue and retry policy, at most once an hour.
    """
    if job.job_type not in registry:
        return  # full_clean reports an unknown type at its field, as for anyone
    declared = registry.get(job.job_type)
    if not declared.open_to_customers:
        raise NotOpenToCustomers(
            f"Customers may not schedule {job.job_type!r}; they may schedule: {', '.join(registry.customer_names())}."
        )
    errors: dict[str, list[str]] = {}
    try:
        payload = declared.validate(job.payload)
    except PayloadInvalid:
        pass  # full_clean reports it at the payload field
    else:
        problems = declared.customer_check(payload, user)
        if problems:
            errors["payload"] = [f"{name}: {problem}" for name, problem in problems.items()]
    if job.priority:
        errors["priority"] = ["Your periodic jobs run on their job type's queue: leave it empty."]
    if job.max_attempts is not None:
        errors["max_attempts"] = ["Your periodic jobs follow their job type's retry policy: leave it empty."]
    if job.retry_delays is not None:
        errors["retry_delays"] = ["Your periodic jobs follow their job type's retry policy: leave it empty."]
    if job.cron_expression:
        try:
            minute = cron_normalise(job.cron_expression).split()[0]
        except ValueError:
            minute = "0"  # full_clean reports the expression itself
        if not minute.isdecimal():
            errors["cron_expression"] = ["Your periodic jobs run at most once an hour: give one minute, e.g. 0."]
    if errors:
        raise ValidationError(errors)


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
