"""The two writes every run makes, claim and completion, as one statement each on PostgreSQL.

Each is an UPDATE and its audit-event INSERT. On PostgreSQL a data-modifying CTE does
both in one round trip, and with JOBS_ASYNC_COMMIT (the default) the commit does not
wait for the WAL flush: for short jobs that flush is most of the worker's time.

Why that loses no work: only an operating-system crash of the database host can drop
the last few hundred milliseconds of such commits, and WAL order means what is lost
is a suffix of history. A lost claim leaves the run queued with no RQ job, a lost
completion leaves it running with no live execution; the recovery pass re-queues
either, and handlers are idempotent. Handlers' own writes keep synchronous commit.
Other databases take the ORM path in jobs/services.py, in one transaction each.
"""

import json
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction

from jobs.models import JobEvent, JobRun

_RUN = JobRun._meta.db_table
_EVENT = JobEvent._meta.db_table
_STARTABLE = ", ".join(f"'{status}'" for status in JobRun.STARTABLE_STATUSES)
# The claimed row comes back in the model's field order, whatever the table's column order.
_FIELDS = JobRun._meta.concrete_fields
_ATTNAMES = [field.attname for field in _FIELDS]
_COLUMNS = ", ".join(f'"{field.column}"' for field in _FIELDS)

CLAIM_SQL = f"""
WITH claimed AS (
    UPDATE {_RUN}
       SET status = 'running', attempt = attempt + 1, started_at = %(now)s, finished_at = NULL,
           worker_name = %(worker)s, next_attempt_at = NULL, updated_at = %(now)s
     WHERE id = %(id)s AND status IN ({_STARTABLE})
 RETURNING {_COLUMNS}
), event AS (
    INSERT INTO {_EVENT} (job_run_id, at, status, attempt, worker, message)
    SELECT id, %(now)s, 'running', attempt, %(worker)s, '' FROM claimed
)
SELECT * FROM claimed
"""

COMPLETE_SQL = f"""
WITH done AS (
    UPDATE {_RUN}
       SET status = 'completed', result = %(result)s::jsonb, finished_at = %(now)s, progress = 100,
           updated_at = %(now)s, error = '', error_type = '', traceback = ''
     WHERE id = %(id)s AND status = 'running' AND cancel_requested_at IS NULL
 RETURNING id, attempt
)
INSERT INTO {_EVENT} (job_run_id, at, status, attempt, worker, message)
SELECT id, %(now)s, 'completed', attempt, %(worker)s, '' FROM done
"""


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
    params = {"id": run_id, "worker": worker, "now": now}
    with _cursor_for(CLAIM_SQL) as (cursor, sql):
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = [_from_db(field, value) for field, value in zip(_FIELDS, row, strict=True)]
    return JobRun.from_db(connection.alias, _ATTNAMES, values)


def _from_db(field, value):
    for converter in field.get_db_converters(connection):  # the JSON fields' parsing
        value = converter(value, field, connection)
    return value


def complete(run_id, result, worker: str, now) -> bool:
    params = {"id": run_id, "result": json.dumps(result), "worker": worker, "now": now}
    with _cursor_for(COMPLETE_SQL) as (cursor, sql):
        cursor.execute(sql, params)
        return cursor.rowcount == 1


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
