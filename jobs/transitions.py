"""Each status change an attempt makes to its run, defined once.

A `Transition` says which rows it may change (from which statuses, whether the writer
must name the run's current attempt, whether a cancel must or must not have been
requested) and what it sets. `jobs.services` applies it through the ORM
(`orm_filter`/`orm_update`); `jobs.hotpath` renders the very same definition as one
PostgreSQL statement (`sql`). They once were two hand-written implementations: the SQL
completion did not check the attempt, and a stale attempt's report cancelled a run
that was waiting for its retry. tests/jobs/test_transitions.py drives both paths
with one table of cases.

Every write after the claim names its attempt: a report from an attempt that is no
longer the run's current one matches no row, changes nothing, and is recorded as an
event by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import F

from jobs.models import JobEvent, JobRun

Status = JobRun.Status
_RUN = JobRun._meta.db_table
_EVENT = JobEvent._meta.db_table
_FIELDS = {field.attname: field for field in JobRun._meta.concrete_fields}


@dataclass(frozen=True)
class Transition:
    name: str
    to: str
    from_statuses: tuple[str, ...]
    # The writer names the attempt it belongs to; a stale attempt matches no row.
    same_attempt: bool
    # True: only after a cancel was requested; False: only if none was; None: either.
    cancel_requested: bool | None = None
    # The claim: this write starts the next attempt.
    next_attempt: bool = False
    # Columns set to the same value every time, and columns whose value the caller gives.
    fixed: tuple[tuple[str, Any], ...] = ()
    given: tuple[str, ...] = ()

    def values(self, given: dict[str, Any]) -> dict[str, Any]:
        if set(given) != set(self.given):
            raise TypeError(f"{self.name} sets {sorted(self.given)}, not {sorted(given)}")
        return {"status": self.to, **dict(self.fixed), **given}

    # --- the ORM path -------------------------------------------------------------------

    def orm_filter(self, run_id, attempt: int | None) -> dict[str, Any]:
        lookups: dict[str, Any] = {"pk": run_id, "status__in": self.from_statuses}
        if self.same_attempt:
            lookups["attempt"] = attempt
        if self.cancel_requested is not None:
            lookups["cancel_requested_at__isnull"] = not self.cancel_requested
        return lookups

    def orm_update(self, given: dict[str, Any]) -> dict[str, Any]:
        update = self.values(given)
        if self.next_attempt:
            update["attempt"] = F("attempt") + 1
        return update

    # --- the SQL path (PostgreSQL) ------------------------------------------------------

    def sql(self, *, returning: str) -> str:
        """UPDATE and its audit event in one statement; selects `returning` of the changed row."""
        sets = [f'"{_FIELDS[name].column}" = %({name})s' for name in self.values(dict.fromkeys(self.given))]
        if self.next_attempt:
            sets.append('"attempt" = "attempt" + 1')
        where = ['"id" = %(id)s', '"status" = ANY(%(from_statuses)s)']
        if self.same_attempt:
            where.append('"attempt" = %(attempt)s')
        if self.cancel_requested is not None:
            where.append(f'"cancel_requested_at" IS {"NOT " if self.cancel_requested else ""}NULL')
        return f"""
WITH changed AS (
    UPDATE {_RUN} SET {", ".join(sets)}
     WHERE {" AND ".join(where)}
 RETURNING *
), event AS (
    INSERT INTO {_EVENT} (job_run_id, at, status, attempt, worker, message)
    SELECT id, %(event_at)s, %(status)s, attempt, %(event_worker)s, %(event_message)s FROM changed
)
SELECT {returning} FROM changed
"""

    def sql_params(self, connection, run_id, attempt, given: dict[str, Any], *, at, worker: str, message: str) -> dict:
        params = {name: _FIELDS[name].get_db_prep_save(value, connection) for name, value in self.values(given).items()}
        params.update(
            id=run_id,
            from_statuses=list(self.from_statuses),
            attempt=attempt,
            event_at=at,
            event_worker=worker,
            event_message=message,
        )
        return params


_STARTABLE = tuple(JobRun.STARTABLE_STATUSES)
_RUNNING = (Status.RUNNING,)
_CANCEL_SETS = ("finished_at", "cancel_reason", "updated_at")

CLAIM = Transition(
    "claim",
    Status.RUNNING,
    _STARTABLE,
    same_attempt=False,
    next_attempt=True,
    # A new attempt starts with no progress message: one left says it waited for its limit (jobs/limits.py).
    fixed=(("finished_at", None), ("next_attempt_at", None), ("progress_message", "")),
    given=("started_at", "worker_name", "updated_at"),
)
COMPLETE = Transition(
    "complete",
    Status.COMPLETED,
    _RUNNING,
    same_attempt=True,
    cancel_requested=False,
    fixed=(("progress", 100), ("error", ""), ("error_type", ""), ("traceback", "")),
    given=("result", "finished_at", "updated_at"),
)
# The attempt stopped because it was cancelled: the handler raised JobCancelled, or
# returned after seeing ctx.cancelled, or its work horse was stopped.
CANCEL_RUNNING = Transition(
    "cancel running",
    Status.CANCELLED,
    _RUNNING,
    same_attempt=True,
    given=_CANCEL_SETS,
)
# The attempt ended after an operator asked it to stop: whatever it reports, it was cancelled.
CANCEL_REQUESTED = Transition(
    "cancel requested",
    Status.CANCELLED,
    _RUNNING,
    same_attempt=True,
    cancel_requested=True,
    given=_CANCEL_SETS,
)
# A waiting run (no attempt in progress) never starts.
CANCEL_WAITING = Transition(
    "cancel waiting",
    Status.CANCELLED,
    _STARTABLE,
    same_attempt=False,
    given=_CANCEL_SETS,
)
RETRY = Transition(
    "retry",
    Status.RETRYING,
    _RUNNING,
    same_attempt=True,
    given=("error", "error_type", "traceback", "finished_at", "next_attempt_at", "updated_at"),
)
FAIL = Transition(
    "fail",
    Status.FAILED,
    _RUNNING,
    same_attempt=True,
    fixed=(("next_attempt_at", None),),
    given=("error", "error_type", "traceback", "finished_at", "updated_at"),
)

ALL = (CLAIM, COMPLETE, CANCEL_RUNNING, CANCEL_REQUESTED, CANCEL_WAITING, RETRY, FAIL)
