"""Writes for periodic jobs and for the switch that pauses all scheduling.

A periodic job is a definition (job type, payload, timing, policies) with exactly one
Schedule row, which carries its timing and bookkeeping; the scheduler fires that row
through the same pass, entries and guarantees as any tier schedule. These functions keep
the row in step with the definition, and its rq-scheduler entry with the row after commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from functools import partial
from operator import itemgetter

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import IntegrityError, connection, transaction
from django.db.models import CharField, Field, JSONField
from django.utils import timezone

from jobs import operators
from jobs.bulk import bulk_insert_values, statistics_catch_up
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
    now = timezone.now()
    rows = [_column_values(fields, now) for fields in jobs]
    found, payload_texts, restated = _errors_of_each(rows)
    if restated:  # values given in another form than a save would store (7 for a name "7")
        rows = [restated.get(index, row) for index, row in enumerate(rows)]
    errors = {f"jobs[{index}]": messages for index, messages in found.items()}
    # (owner, name) pairs, as names by owner: strings, not 10,000 tuples for the collector.
    seen: dict[int | None, set[str]] = {}
    for index, row in enumerate(rows):
        names = seen.setdefault(row[_OWNER], set())
        if row[_NAME] in names:
            errors.setdefault(f"jobs[{index}]", []).append(f"name: {row[_NAME]!r} appears twice in this batch.")
        names.add(row[_NAME])
    if errors:
        _add_names_taken(errors, rows, seen)
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            # The payloads as the JSON text made when they were checked: serialised once.
            ids = bulk_insert_values(PeriodicJob, _COLUMNS, rows, json_texts={"payload": payload_texts})
            statistics_catch_up(PeriodicJob, len(ids))  # before the schedule rows' checks use its plan
            for start in range(0, len(rows), _CHUNK):
                periodic_schedules_create(
                    (pk, row[_JOB_TYPE], row[_FREQUENCY], row[_CRON], row[_TIMEZONE], row[_ENABLED])
                    for pk, row in zip(ids[start : start + _CHUNK], rows[start : start + _CHUNK], strict=True)
                )
    except IntegrityError:
        # Names are unique by the database's own constraints, which the insert has just
        # checked for the whole batch at once: only a refused batch asks which names were taken.
        _add_names_taken(errors, rows, seen)
        if errors:
            raise ValidationError(errors) from None
        raise
    return ids


def _add_names_taken(errors: dict[str, list[str]], rows: list[tuple], seen: dict[int | None, set[str]]) -> None:
    # Only a name that could be stored can be taken: None is refused by full_clean, and a lone
    # surrogate ("\ud800") by the database driver, which cannot even send it in a query.
    taken = _names_taken({(owner, name) for owner, names in seen.items() for name in names if _storable(name)})
    for index, row in enumerate(rows):
        if (row[_OWNER], row[_NAME]) in taken:
            errors.setdefault(f"jobs[{index}]", []).append(f"name: a periodic job named {row[_NAME]!r} exists already.")


def _storable(name) -> bool:
    if not isinstance(name, str):
        return False
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


_FIELDS = [field for field in PeriodicJob._meta.concrete_fields if not field.primary_key]
_COLUMNS = [field.attname for field in _FIELDS]
# Where each column sits in a row (a list in _COLUMNS order).
_NAME, _DESCRIPTION, _JOB_TYPE, _PAYLOAD, _FREQUENCY, _CRON, _TIMEZONE, _ENABLED, _OWNER, _CREATED, _UPDATED = (
    _COLUMNS.index(name)
    for name in (
        "name",
        "description",
        "job_type",
        "payload",
        "frequency",
        "cron_expression",
        "timezone",
        "enabled",
        "owner_id",
        "created_at",
        "updated_at",
    )
)
_UNSET = object()


def _column_values(fields: dict, now) -> tuple:
    """A new job's column values in _COLUMNS order: what PeriodicJob(**fields) would hold,
    defaults included, and the save's timestamps.

    A tuple: the cyclic garbage collector stops tracking a tuple of plain values, and full
    collections over 100,000 tracked rows cost a few microseconds a row."""
    values = _CONSTANT_DEFAULTS.copy()
    for name, value in fields.items():
        index = _INDEXES.get(name)
        if index is None:
            raise TypeError(f"PeriodicJob has no field {name!r}")
        if index == _OWNER and value is not None and not isinstance(value, int):
            value = value.pk  # owner=user
        values[index] = value
    for index, make in _MADE_DEFAULTS:
        if values[index] is _UNSET:
            values[index] = make()  # a fresh {} per row, as Django's default makes
    values[_CREATED] = values[_UPDATED] = now
    return tuple(values)


def _plain(value):
    """A choice's value rather than its enum member (SchedulerConfig.Overlap.SKIP -> "skip"), as
    the database gives it back: equal for every check, and a row of plain values is not tracked
    by the garbage collector."""
    return value.value if isinstance(value, Enum) else value


# Defaults as PeriodicJob() fills them in: constants copied, the others made per row.
_MADE_DEFAULTS = [(i, f.default) for i, f in enumerate(_FIELDS) if f.has_default() and callable(f.default)]
_CONSTANT_DEFAULTS = [_UNSET if f.has_default() and callable(f.default) else _plain(f.get_default()) for f in _FIELDS]
# A field by its name or its attname (owner or owner_id) -> its index.
_INDEXES = {f.name: i for i, f in enumerate(_FIELDS)} | {f.attname: i for i, f in enumerate(_FIELDS)}


# Fields whose values differ row by row in a batch; the others (timing, policies, owner) are
# usually shared by thousands of rows, and a value's field checks are run once per batch.
_PER_ROW_FIELDS = ("name", "description", "payload")


def _surely_clean_text(field) -> Callable[[object], bool] | None:
    """For a CharField that checks nothing but its length (and blankness): a test that says True
    only of values its clean() passes, in a fraction of the time. False means "ask clean()",
    which then words the error. None when the field checks more than that."""
    if field.choices or not field.editable or [type(v) for v in field.validators] != [MaxLengthValidator]:
        return None
    longest, blank = field.max_length, field.blank
    if type(field).to_python is not CharField.to_python or type(field).validate is not Field.validate:
        return None
    return lambda value: type(value) is str and len(value) <= longest and (blank or value != "")


def _surely_clean_json(field) -> Callable[[object], str | None] | None:
    """For a plain JSONField: the value's JSON text when clean() passes it (it checks exactly that
    json.dumps works), else None ("ask clean()"). The text is what the insert then writes."""
    if field.choices or field.validators or field.encoder is not None or type(field).validate is not JSONField.validate:
        return None

    def text(value) -> str | None:
        if value is None:
            return None  # the field's null and blank rules decide
        try:
            return json.dumps(value)  # what JSONField.validate does, and what the COPY writes
        except Exception:  # clean() then says (or raises) what full_clean would
            return None

    return text


def _errors_of_each(rows: list[tuple]) -> tuple[dict[int, list[str]], list[str | None], dict[int, tuple]]:
    """What `full_clean` (less uniqueness, checked in bulk) says of each job, as "field: message"
    lines by index; each payload's JSON text (None where it was not made); and, for the clean
    rows whose cleaned values differ from the given ones, the values full_clean leaves to save.

    Django's checks of the fields shared by many rows (about 50 microseconds a row in all)
    run once per distinct combination of them, on an instance shared by those rows. A row
    whose every other check surely passes (see _surely_clean_*) and whose payload the job
    type's schema takes, where the model's clean() already passed for a row with the same
    shared values (clean() depends on nothing else), is clean with no further work; any
    other row gets Django's own field checks and clean(), whose messages are reported."""
    name_field, description_field, payload_field = (PeriodicJob._meta.get_field(n) for n in _PER_ROW_FIELDS)
    per_row = [(f, _COLUMNS.index(f.attname)) for f in _FIELDS if f.name in _PER_ROW_FIELDS]
    shared_fields = [(i, f) for i, f in enumerate(_FIELDS) if f.name not in _PER_ROW_FIELDS]
    # JSON values (retry_delays) are lists: keyed by their repr, the rest as they are.
    scalars = itemgetter(*(i for i, f in shared_fields if not isinstance(f, JSONField)))
    json_columns = [i for i, f in shared_fields if isinstance(f, JSONField)]
    name_ok = _surely_clean_text(name_field) or _never
    description_ok = _surely_clean_text(description_field) or _never
    payload_text = _surely_clean_json(payload_field) or _no_text
    shared: dict[tuple, _Shared] = {}
    found: dict[int, list[str]] = {}
    texts: list[str | None] = []
    restated: dict[int, tuple] = {}
    for index, row in enumerate(rows):
        key = (scalars(row), *[repr(row[i]) for i in json_columns])
        group = shared.get(key)
        if group is None:
            group = shared[key] = _Shared(row)
        text = payload_text(row[_PAYLOAD])
        texts.append(text)
        if (
            group.clean_passed
            and text is not None
            and name_ok(row[_NAME])
            and description_ok(row[_DESCRIPTION])
            and group.schema_takes(row[_PAYLOAD])
        ):
            if not group.as_given:
                restated[index] = tuple(
                    row[i] if i in (_NAME, _DESCRIPTION, _PAYLOAD) else v for i, v in enumerate(group.cleaned)
                )
            continue
        messages = _row_errors(group, row, per_row)
        if messages:
            found[index] = [f"{field}: {' '.join(lines)}" for field, lines in messages.items()]
        else:
            restated[index] = tuple(getattr(group.job, attname) for attname in _COLUMNS)
    return found, texts, restated


class _Shared:
    """What the rows with the same shared values have in common: an instance to check them
    on, the shared fields' errors, and whether clean() passed for one of them."""

    def __init__(self, row: tuple):
        self.job = PeriodicJob(**dict(zip(_COLUMNS, row, strict=True)))
        self.messages = _messages(self.job.clean_fields, exclude=[*_PER_ROW_FIELDS, "id"])
        # The shared values as full_clean leaves them (to_python'd: "3" -> 3), and whether
        # they are the given ones, type and all.
        self.cleaned = tuple(getattr(self.job, attname) for attname in _COLUMNS)
        self.as_given = all(
            type(value) is type(given) and value == given
            for value, given, field in zip(self.cleaned, row, _FIELDS, strict=True)
            if field.name not in _PER_ROW_FIELDS
        )
        self.clean_passed = False
        job_type = row[_JOB_TYPE]
        self.validate = registry.get(job_type).validate if isinstance(job_type, str) and job_type in registry else None

    def schema_takes(self, payload) -> bool:
        try:
            self.validate(payload)
        except PayloadInvalid:
            return False
        return True


def _row_errors(group: _Shared, row: tuple, per_row: list) -> dict[str, list[str]]:
    """full_clean's errors for one row, as Django's own checks word them: the fields' in field
    order, then clean()'s, added to a field's own."""
    job = group.job
    field_errors = {name: list(lines) for name, lines in group.messages.items()}  # extended below
    for field, at in per_row:  # as Model.clean_fields does, for these fields only
        raw = row[at]
        setattr(job, field.attname, raw)
        if field.blank and raw in field.empty_values:
            continue
        try:
            setattr(job, field.attname, field.clean(raw, job))
        except ValidationError as exc:
            field_errors[field.name] = exc.messages
    messages = {f.name: field_errors[f.name] for f in _FIELDS if f.name in field_errors}
    try:
        job.clean()
    except ValidationError as exc:
        for field, lines in exc.message_dict.items():
            messages.setdefault(field, []).extend(lines)  # as full_clean: after the field's own
    else:
        if not group.messages:
            group.clean_passed = True
    return messages


def _never(value) -> bool:
    return False


def _no_text(value) -> None:
    return None


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
