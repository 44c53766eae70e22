"""Inserting many new rows fast: COPY on PostgreSQL, bulk_create elsewhere.

Django's bulk_create builds one SQL placeholder per field per row, which costs more
than the database's own work for wide rows; fan-out of 10,000 runs felt it.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from django.db import IntegrityError, connections, models, router, transaction
from psycopg.types.json import Jsonb


def _column_value(field: models.Field, connection) -> Callable[[models.Model], Any]:
    """How to read one column's value off an object, doing only the conversion it needs."""
    if isinstance(field, models.JSONField):
        return lambda obj: field.get_db_prep_save(field.pre_save(obj, add=True), connection)
    if isinstance(field, models.DateTimeField | models.DateField) and (field.auto_now or field.auto_now_add):
        return lambda obj: field.pre_save(obj, add=True)
    attname = field.attname
    return lambda obj: getattr(obj, attname)  # psycopg adapts str, int, float, bool, UUID, datetime, None


@contextmanager
def _binary_copy(cursor, target: str, fields: list[models.Field], connection):
    """COPY <target> FROM STDIN in PostgreSQL's binary format.

    About five times faster to write than text (80,000 rows: 0.08 s against 0.4 s),
    because psycopg's C dumpers encode each value once they know the column types.
    """
    with cursor.copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as copy:
        # db_type gives SQL type names psycopg knows, once sizes are dropped ("varchar(100)").
        copy.set_types([re.sub(r"\(.*\)", "", field.db_type(connection)).strip() for field in fields])
        yield copy


def bulk_insert(model: type[models.Model], objs: list[models.Model]) -> None:
    """Insert new objects (primary keys from Python defaults, or assigned by the database)."""
    if not objs:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=2000)
        return
    fields = [
        field
        for field in model._meta.concrete_fields
        if not (field.primary_key and isinstance(field, models.AutoField | models.BigAutoField))
    ]
    readers = [_column_value(field, connection) for field in fields]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    connection.ensure_connection()
    with connection.cursor() as cursor, _binary_copy(cursor, f"{table} ({columns})", fields, connection) as copy:
        for obj in objs:
            copy.write_row([read(obj) for read in readers])


def bulk_insert_new(model: type[models.Model], rows: list[dict[str, Any]]) -> set:
    """Insert rows given as {attname: value} for every column, skipping any a unique constraint refuses.

    Returns the primary keys actually inserted. On PostgreSQL the rows are COPYed
    straight into the table, no model instance built; only if a unique constraint
    refuses that (a racing writer got there first, which is rare) are they COPYed into
    a temporary table and moved with INSERT ... ON CONFLICT DO NOTHING RETURNING.
    """
    if not rows:
        return set()
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        objs = [model(**row) for row in rows]
        model.objects.bulk_create(objs, batch_size=2000, ignore_conflicts=True)
        return set(model.objects.filter(pk__in=[obj.pk for obj in objs]).values_list("pk", flat=True))
    fields = list(model._meta.concrete_fields)
    is_json = [isinstance(field, models.JSONField) for field in fields]
    values = [
        [
            field.get_db_prep_save(row[field.attname], connection) if json else row[field.attname]
            for field, json in zip(fields, is_json, strict=True)
        ]
        for row in rows
    ]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    pk = model._meta.pk

    def copy_into(cursor, target: str) -> None:
        with _binary_copy(cursor, f"{target} ({columns})", fields, connection) as copy:
            for row in values:
                copy.write_row(row)

    try:
        with (
            transaction.atomic(using=connection.alias),
            connection.cursor() as cursor,
            connection.wrap_database_errors,  # psycopg's UniqueViolation -> Django's IntegrityError
        ):
            copy_into(cursor, table)
        return {row[pk.attname] for row in rows}
    except IntegrityError:
        pass  # rolled back to the savepoint; the staging path below skips what is already there
    staging = connection.ops.quote_name(f"staging_{model._meta.db_table}")
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        # Lives until the surrounding transaction ends; emptied first in case it is reused in it.
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
        cursor.execute(f"TRUNCATE {staging}")
        copy_into(cursor, staging)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} "
            f"ON CONFLICT DO NOTHING RETURNING {connection.ops.quote_name(pk.column)}"
        )
        return {row[0] for row in cursor.fetchall()}


def bulk_update_rows(model: type[models.Model], field_names: list[str], rows: list[tuple], batch_size=2000) -> None:
    """Set different values on many rows in one statement per batch: rows are (pk, value, ...).

    Django's bulk_update writes a CASE per field with one branch per row, which the
    database evaluates row by row: quadratic, 2 s for 10,000 rows. Joining the rows
    instead is linear: UPDATE ... FROM one array per column on PostgreSQL, FROM a
    VALUES list on SQLite (3.33+).
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    fields = [meta.pk, *(meta.get_field(name) for name in field_names)]
    qn = connection.ops.quote_name
    table = qn(meta.db_table)
    postgres = connection.vendor == "postgresql"

    def column(index: int) -> str:
        # SQLite calls VALUES columns column1, column2, ...; the PostgreSQL path names its own.
        return f"v.c{index}" if postgres else f"v.column{index + 1}"

    assignments = ", ".join(f"{qn(field.column)} = {column(i)}" for i, field in enumerate(fields) if i)
    where = f"WHERE {table}.{qn(meta.pk.column)} = {column(0)}"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            if postgres:
                # One array per column: a short statement however many rows, nothing for the
                # driver to splice.
                arrays = ", ".join(
                    f"unnest(%s::{field.db_type(connection)}[]) AS c{i}" for i, field in enumerate(fields)
                )
                # psycopg adapts the Python values (int, str, UUID, aware datetime) itself.
                params = [[row[i] for row in batch] for i in range(len(fields))]
                cursor.execute(f"UPDATE {table} SET {assignments} FROM (SELECT {arrays}) AS v {where}", params)
                continue
            placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
            params = [
                field.get_db_prep_save(value, connection)
                for row in batch
                for field, value in zip(fields, row, strict=True)
            ]
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM (VALUES {', '.join([placeholder] * len(batch))}) AS v {where}",
                params,
            )


def bulk_insert_values(
    model: type[models.Model],
    attnames: list[str],
    rows: list[tuple],
    *,
    returning: bool = True,
    json_texts: Mapping[str, Sequence[str | None]] | None = None,
) -> list:
    """Insert rows given as tuples of column values (every column but an integer primary key);
    return the primary keys the database assigned, in order (or [] when not `returning`).

    On PostgreSQL the keys are drawn from the table's sequence in one query and the rows
    COPYed, with no model instances at all; elsewhere bulk_create does both. `json_texts`
    may give a JSON column's values as JSON text made already (while validating them, say),
    row by row: PostgreSQL is sent that text instead of the values serialised a second time
    (None in it: serialise that row's value).
    """
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    fields_by_attname = {field.attname: field for field in meta.concrete_fields}
    json_columns = [i for i, name in enumerate(attnames) if isinstance(fields_by_attname[name], models.JSONField)]
    if connection.vendor != "postgresql":
        objs = [model(**dict(zip(attnames, row, strict=True))) for row in rows]
        model.objects.bulk_create(objs, batch_size=2000)
        return [obj.pk for obj in objs] if returning else []
    # JSON columns take Python values like the others; psycopg needs them wrapped (Jsonb).
    # Django's own adaptation costs tens of microseconds a value; with no custom encoder it
    # is exactly psycopg's Jsonb (None stays SQL NULL, as Django writes it).
    adapters = []
    for index in json_columns:
        field = fields_by_attname[attnames[index]]
        texts = (json_texts or {}).get(attnames[index])
        if texts is not None:
            adapt = partial(_jsonb_text, texts)
        elif field.encoder is None:
            adapt = _jsonb
        else:
            adapt = _ignoring_row(partial(field.get_db_prep_save, connection=connection))
        adapters.append((index + returning, adapt))  # after the primary key, when there is one
    names = [meta.pk.attname, *attnames] if returning else attnames
    columns = ", ".join(connection.ops.quote_name(fields_by_attname[name].column) for name in names)
    pks: list = []
    with connection.cursor() as cursor:
        if returning:
            # One array, the sequence's name looked up once (pg_get_serial_sequence per row
            # cost 2 us a row).
            cursor.execute(
                "SELECT array_agg(nextval((SELECT pg_get_serial_sequence(%s, %s))::regclass)) "
                "FROM generate_series(1, %s)",
                [meta.db_table, meta.pk.column, len(rows)],
            )
            [pks] = cursor.fetchone()
        table = connection.ops.quote_name(meta.db_table)
        with (
            connection.wrap_database_errors,  # a refused row raises Django's IntegrityError, as elsewhere
            _binary_copy(
                cursor, f"{table} ({columns})", [fields_by_attname[name] for name in names], connection
            ) as copy,
        ):
            # Each row adapted as it is written: no second copy of 10,000 rows kept alive.
            for index, row in enumerate(rows):
                if adapters:
                    row = [pks[index], *row] if returning else list(row)
                    for at, adapt in adapters:
                        row[at] = adapt(row[at], index)
                elif returning:
                    row = (pks[index], *row)
                copy.write_row(row)
    return pks


def statistics_catch_up(model: type[models.Model], added: int) -> None:
    """After `added` rows went into `model`'s table in this transaction: on PostgreSQL, ANALYZE
    it when the planner still believes it to hold fewer rows than that.

    For tables whose new rows the same transaction's foreign keys point at. Each such row
    is checked (at commit) by a plan the session caches, and a plan made while the table held
    a handful of rows scans it: 2,000 checks of a table growing to 2,000 rows read two million
    rows, and the benchmark's import of 100,000 took minutes. ANALYZE counts the new rows and
    makes every cached plan over the table plan again. SKIP_LOCKED: a concurrent transaction
    analyzing it is doing the same, and waiting for its lock could deadlock with its inserts.
    """
    connection = connections[router.db_for_write(model)]
    if not added or connection.vendor != "postgresql":
        return
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        [(believed,)] = cursor.fetchall()  # -1: never analyzed
        if added > believed:
            cursor.execute(f"ANALYZE (SKIP_LOCKED) {table}")


def _as_is(text: str) -> str:
    return text


def _jsonb(value, row: int) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _jsonb_text(texts: Sequence[str | None], value, row: int) -> Jsonb | None:
    text = texts[row]
    if text is None:
        return _jsonb(value, row)
    return Jsonb(text, _as_is)


def _ignoring_row(adapt: Callable[[Any], Any]) -> Callable[[Any, int], Any]:
    return lambda value, row: adapt(value)


def bulk_insert_ignore(model: type[models.Model], attnames: list[str], rows: list[tuple]) -> int:
    """Insert rows given as tuples of `attnames` values, skipping any a unique constraint refuses
    (already stored, or repeated within `rows`); return how many were inserted.

    On PostgreSQL the rows are COPYed straight into the table, the fast path when they
    are all new (a first import); if a unique constraint refuses one, that COPY is undone
    and the rows go through a temporary table and one INSERT ... ON CONFLICT DO NOTHING.
    Elsewhere one executemany does the same.
    """
    if not rows:
        return 0
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    fields_by_attname = {field.attname: field for field in meta.concrete_fields}
    fields = [fields_by_attname[name] for name in attnames]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = ", ".join(quote(field.column) for field in fields)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING", rows)
            return cursor.rowcount
        rows = list(dict.fromkeys(rows))  # a row repeated within the batch would refuse the fast path
        try:
            with (
                transaction.atomic(using=connection.alias),
                connection.wrap_database_errors,
                _binary_copy(cursor, f"{table} ({columns})", fields, connection) as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return len(rows)
        except IntegrityError:
            pass  # rolled back to the savepoint; the path below skips what is already there
        staging = quote(f"staging_ignore_{meta.db_table}")
        # Emptied first in case a caller's transaction already made it and an error left it there.
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} AS SELECT {columns} FROM {table} WITH NO DATA; "
            f"TRUNCATE {staging}"
        )
        with _binary_copy(cursor, f"{staging} ({columns})", fields, connection) as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} ON CONFLICT DO NOTHING")
        inserted = cursor.rowcount
        cursor.execute(f"DROP TABLE {staging}")
        return inserted
