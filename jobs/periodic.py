"""Writes for periodic jobs and for the switch that pauses all scheduling.

A periodic job is a definition (job type, payload, timing, policies) with exactly one
Schedule row, which carries its timing and bookkeeping; the scheduler fires that row
through the same pass, entries and guarantees as any tier schedule. These functions keep
the row in step with the definition, and its rq-scheduler entry with the row after commit.
"""

from __future__ import annotations

from functools import partial
from operator import itemgetter

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import JSONField
from django.utils import timezone

from jobs import operators
from jobs.bulk import bulk_insert_values
from jobs.cron import cron_normalise
from jobs.errors import JobError, PayloadInvalid
from jobs.models import JobRun, PeriodicJob, Schedule, SchedulingSwitch
from jobs.registry import registry
from jobs.scheduling import next_run_or_none, periodic_schedules_create, schedule_entry_follow
from jobs.services import enqueue


class PeriodicJobProtected(ValidationError):
    """A built-in periodic job cannot be deleted (disable it instead)."""


class NotOpenToCustomers(JobError):
    """A customer named a job type that customers may not schedule for themselves."""


def periodic_job_create(**fields) -> PeriodicJob:
    """Create a periodic job from model fields; its schedule and entry follow after commit."""
    return periodic_job_save(PeriodicJob(**fields))


def periodic_jobs_create_many(jobs: list[dict]) -> list[int]:
    """Create many periodic jobs at once (all or none), each validated as `periodic_job_create`
    validates one; their schedules in bulk, their entries after commit. Returns the new ids.

    For imports and provisioning: 100,000 jobs cost a few bulk inserts, not 100,000 saves.
    Rows are column values, not model instances (an instance costs more than its insert).
    """
    if not jobs:
        return []
    rows = [_column_values(fields) for fields in jobs]
    errors = {f"jobs[{index}]": messages for index, messages in _errors_of_each(rows).items()}
    names = [(row["owner_id"], row["name"]) for row in rows]
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
    for row in rows:
        row["created_at"] = row["updated_at"] = now
    with transaction.atomic():
        ids = bulk_insert_values(PeriodicJob, _COLUMNS, [tuple(row[name] for name in _COLUMNS) for row in rows])
        timings = [
            (pk, row["job_type"], row["frequency"], row["cron_expression"], row["timezone"], row["enabled"])
            for pk, row in zip(ids, rows, strict=True)
        ]
        for start in range(0, len(timings), _CHUNK):
            periodic_schedules_create(timings[start : start + _CHUNK])
    return ids


_FIELDS = [field for field in PeriodicJob._meta.concrete_fields if not field.primary_key]
_COLUMNS = [field.attname for field in _FIELDS]


def _column_values(fields: dict) -> dict:
    """A new job's {attname: value}: what PeriodicJob(**fields) would hold, defaults included."""
    values = _CONSTANT_DEFAULTS.copy()
    for attname, make in _MADE_DEFAULTS:
        values[attname] = make()  # a fresh {} per row, as Django's default makes
    for name, value in fields.items():
        attname = _ATTNAMES.get(name)
        if attname is None:
            raise TypeError(f"PeriodicJob has no field {name!r}")
        if attname != name and value is not None and not isinstance(value, int):
            value = value.pk  # owner=user
        values[attname] = value
    return values


# Defaults as PeriodicJob() fills them in, split into constants (copied) and made per row.
_MADE_DEFAULTS = [(f.attname, f.default) for f in _FIELDS if f.has_default() and callable(f.default)]
_CONSTANT_DEFAULTS = {f.attname: f.get_default() for f in _FIELDS if f.attname not in dict(_MADE_DEFAULTS)}
# A field by its name or its attname (owner or owner_id) -> its attname.
_ATTNAMES = {f.name: f.attname for f in _FIELDS} | {f.attname: f.attname for f in _FIELDS}


# Fields whose values differ row by row in a batch; the others (timing, policies, owner) are
# usually shared by thousands of rows, and a value's field checks are run once per batch.
_PER_ROW_FIELDS = ("name", "description", "payload")


def _errors_of_each(rows: list[dict]) -> dict[int, list[str]]:
    """What `full_clean` (less uniqueness, checked in bulk) says of each job, as "field: message"
    lines by index. The model's clean() and the per-row fields' checks run for every row, on
    an instance shared by the rows with the same other values; Django's checks of those other
    fields (about 50 microseconds a row in all) run once per distinct combination of them."""
    per_row = [f for f in _FIELDS if f.name in _PER_ROW_FIELDS]
    shared_fields = [f for f in _FIELDS if f.name not in _PER_ROW_FIELDS]
    # JSON values (retry_delays) are lists: keyed by their repr, the rest as they are.
    scalars = itemgetter(*(f.attname for f in shared_fields if not isinstance(f, JSONField)))
    json_columns = [f.attname for f in shared_fields if isinstance(f, JSONField)]
    shared: dict[tuple, tuple[PeriodicJob, dict[str, list[str]]]] = {}
    found: dict[int, list[str]] = {}
    for index, row in enumerate(rows):
        key = (scalars(row), *[repr(row[name]) for name in json_columns])
        if key not in shared:
            job = PeriodicJob(**row)
            shared[key] = (job, _messages(job.clean_fields, exclude=[*_PER_ROW_FIELDS, "id"]))
        job, shared_messages = shared[key]
        messages = dict(shared_messages) if shared_messages else {}
        for field in per_row:  # as Model.clean_fields does, for these fields only
            raw = row[field.attname]
            setattr(job, field.attname, raw)
            if field.blank and raw in field.empty_values:
                continue
            try:
                field.clean(raw, job)
            except ValidationError as exc:
                messages[field.name] = exc.messages
        try:
            job.clean()
        except ValidationError as exc:
            for field, lines in exc.message_dict.items():
                messages.setdefault(field, lines)  # as full_clean: a field's own error first
        if messages:
            found[index] = [f"{field}: {' '.join(lines)}" for field, lines in messages.items()]
    return found


def _messages(check, **kwargs) -> dict[str, list[str]]:
    try:
        check(**kwargs)
    except ValidationError as exc:
        return exc.message_dict
    return {}


# Rows per query: well under SQLite's limit of bound variables.
_CHUNK = 5000


def _names_taken(keys: set[tuple[int | None, str]]) -> set[tuple[int | None, str]]:
    """Which of these (owner, name) pairs exist already. System names and owned names are asked
    apart, so each query can use its unique index (a bare `name IN` could use neither); on
    PostgreSQL with the names as one array parameter (10,000 placeholders cost more to send)."""
    system = sorted(name for owner, name in keys if owner is None)
    owned = [key for key in keys if key[0] is not None]
    owners, owned_names = sorted({o for o, _ in owned}), sorted({n for _, n in owned})
    table = PeriodicJob._meta.db_table
    taken = set()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if system:
                cursor.execute(
                    f"SELECT owner_id, name FROM {table} WHERE owner_id IS NULL AND name = ANY(%s)", [system]
                )
                taken |= set(cursor.fetchall())
            if owned:
                cursor.execute(
                    f"SELECT owner_id, name FROM {table} WHERE owner_id = ANY(%s) AND name = ANY(%s)",
                    [owners, owned_names],
                )
                taken |= set(cursor.fetchall())
        return taken & keys
    jobs = PeriodicJob.objects.values_list("owner_id", "name")
    for start in range(0, len(system), _CHUNK):
        taken |= set(jobs.filter(owner__isnull=True, name__in=system[start : start + _CHUNK]))
    for start in range(0, len(owned_names), _CHUNK):
        taken |= set(jobs.filter(owner_id__in=owners, name__in=owned_names[start : start + _CHUNK]))
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
