"""`python -m bench [name ...]`: set up a private Redis and database, then run benchmarks.

Redis: a private redis-server on a free port (or BENCH_REDIS_URL). Database:
BENCH_DATABASE_URL if set; else a fresh `kordant_bench` database on the local
PostgreSQL (127.0.0.1:5432, user postgres) when one answers; else a SQLite file
under var/. Your development database and Redis are never touched.
"""

import importlib
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# One database per run, so two benchmark runs never pull the floor from under each other.
BENCH_DATABASE = f"kordant_bench_{os.getpid()}"


def _postgres_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def _prepare_database() -> tuple[str, bool]:
    """Return the benchmark DATABASE_URL and whether this run created (and must drop) it."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        return url, False
    if _postgres_answers():
        _postgres_admin(f"CREATE DATABASE {BENCH_DATABASE}")
        return f"postgres://postgres@127.0.0.1:5432/{BENCH_DATABASE}", True
    path = ROOT / "var" / f"{BENCH_DATABASE}.sqlite3"
    path.parent.mkdir(exist_ok=True)
    return f"sqlite:///{path}", False


def setup() -> tuple[object, bool]:
    """Point Django at the benchmark database and Redis, migrate; return (Redis server, created db)."""
    from kordant.embedded_redis import EmbeddedRedis, free_port

    server = None
    redis_url = os.environ.get("BENCH_REDIS_URL")
    if not redis_url:
        server = EmbeddedRedis(tempfile.mkdtemp(prefix="kordant-bench-redis-"), port=free_port(), persist=False)
        redis_url = server.start().url
    os.environ["REDIS_URL"] = redis_url
    os.environ["DATABASE_URL"], created = _prepare_database()
    os.environ["DEBUG"] = "false"  # no query log growing in memory
    os.environ.setdefault("SECRET_KEY", "benchmark-only")
    os.environ.setdefault("IDENTIFIER_ENCRYPTION_KEYS", "YmVuY2htYXJrLW9ubHkta2V5LW5vdC1hLXNlY3JldCE=")
    os.environ.setdefault("IDENTIFIER_HASH_KEY", "benchmark-only")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "kordant.settings"

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    print(f"database: {os.environ['DATABASE_URL'].split('@')[-1]}   redis: {redis_url}", flush=True)
    return server, created


def main(argv: list[str]) -> int:
    from bench import BENCHMARKS

    names = argv or BENCHMARKS
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    server, created_database = setup()
    try:
        for name in names:
            print(f"\n== bench.{name}", flush=True)
            started = time.perf_counter()
            importlib.import_module(f"bench.{name}").main()
            print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    finally:
        if server is not None:
            server.stop()
        from django.db import connections

        connections.close_all()
        if created_database:
            _postgres_admin(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        elif os.environ["DATABASE_URL"].endswith(f"{BENCH_DATABASE}.sqlite3"):
            for leftover in (ROOT / "var").glob(f"{BENCH_DATABASE}.sqlite3*"):
                leftover.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
