"""A run's status transitions (claim, completion, failure, ...) as one statement each on PostgreSQL.

Each is an UPDATE and its audit-event INSERT, rendered from the transition's one
definition in jobs/transitions.py, the same one the ORM path applies. On PostgreSQL a data-modifying CTE does
both in one round trip, and with JOBS_ASYNC_COMMIT (the default) the commit does not
wait for the WAL flush: for short jobs that flush is most of the worker's time.

Why that loses no work: only an operating-system crash of the database host can drop
the last few hundred milliseconds of such commits, and WAL order means what is lost
is a suffix of history. A lost claim leaves the run queued with no RQ job, a lost
completion leaves it running with no live execution; the recovery pass re-queues
either, and handlers are idempotent. Handlers' own writes keep synchronous commit.
Other databases take the ORM path in jobs/services.py, in one transaction each.
"""

from contextlib import contextmanager
from functools import cache

from django.conf import settings
from django.db import connection, transaction

from jobs import transitions
from jobs.models import JobRun
from jobs.transitions import Transition

_RUN = JobRun._meta.db_table
# The claimed row comes back in the model's field order, whatever the table's column order.
_FIELDS = JobRun._meta.concrete_fields
_ATTNAMES = [field.attname for field in _FIELDS]
_COLUMNS = ", ".join(f'"{field.column}"' for field in _FIELDS)


@cache
def _statement(transition: Transition, returning: str) -> str:
    # Rendered from the transition's one definition (jobs/transitions.py), once per process.
    return transition.sql(returning=returning)


def available() -> bool:
    return connection.vendor == "postgresql"


# Sent after the statement in the same query string: a multi-statement query runs as one
# implicit transaction that commits after its last statement, so this still relaxes the
# statement's commit, and the cursor's first result stays the statement's own.
RELAX_COMMIT = "; SET LOCAL synchronous_commit TO OFF"


@contextmanager
def _cursor_for(sql: str):
    """A cursor that has run `sql` with relaxed commit, in as few round trips as possible."""
    with connection.cursor() as cursor:
        if not settings.JOBS_ASYNC_COMMIT or connection.in_atomic_block:
            # Inside a caller's transaction, relaxing would relax the caller's commit too.
            yield cursor, sql
        elif not connection.settings_dict["OPTIONS"].get("server_side_binding"):
            # Client-side binding sends one simple query, which may hold several statements.
            yield cursor, sql + RELAX_COMMIT
        else:
            with transaction.atomic():
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
                yield cursor, sql


def claim(run_id, worker: str, now) -> JobRun | None:
    given = {"started_at": now, "worker_name": worker, "updated_at": now}
    row = _apply(transitions.CLAIM, run_id, None, given, worker=worker, message="", returning=_COLUMNS)
    if row is None:
        return None
    values = [_from_db(field, value) for field, value in zip(_FIELDS, row, strict=True)]
    return JobRun.from_db(connection.alias, _ATTNAMES, values)


def _from_db(field, value):
    for converter in field.get_db_converters(connection):  # the JSON fields' parsing
        value = converter(value, field, connection)
    return value


def apply(transition: Transition, run_id, attempt, given: dict, *, worker: str, message: str) -> bool:
    """Make one transition of one run, with its audit event, in one statement; False if no row matched."""
    return _apply(transition, run_id, attempt, given, worker=worker, message=message, returning="id") is not None


def _apply(transition: Transition, run_id, attempt, given: dict, *, worker: str, message: str, returning: str):
    params = transition.sql_params(
        connection, run_id, attempt, given, at=given["updated_at"], worker=worker, message=message
    )
    with _cursor_for(_statement(transition, returning)) as (cursor, sql):
        cursor.execute(sql, params)
        return cursor.fetchone()


MARK_QUEUED_SQL = f"""
UPDATE {_RUN} SET status = 'queued', enqueued_at = %(now)s, updated_at = %(now)s
 WHERE id = ANY(%(ids)s::uuid[]) AND status = ANY(%(from_statuses)s)
RETURNING id, attempt
"""


def mark_queued(ids: list[str], from_statuses, now) -> list[tuple]:
    """Mark runs that reached Redis as queued, in one statement; return (id, attempt) of those changed."""
    params = {"ids": ids, "from_statuses": list(from_statuses), "now": now}
    with _cursor_for(MARK_QUEUED_SQL) as (cursor, sql):
        cursor.execute(sql, params)
        return cursor.fetchall()
