"""What PostgreSQL itself counts, for tests that hold a query plan to its cost."""

from django.db import connection


def rows_read_by_scans(table: str) -> int:
    """Rows this transaction has read from `table` by sequential scans (pg_stat_xact_user_tables)."""
    # Outside a transaction each statement is its own, and the count is whatever the backend
    # has not yet reported: a comparison of two readings would mean nothing.
    assert connection.in_atomic_block, "count rows read inside one transaction"
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = %s", [table])
        return cursor.fetchone()[0]


def foreign_keys_checked_at_once() -> None:
    """Check this transaction's deferred foreign keys at each statement, as commit would check them."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def analyze(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
