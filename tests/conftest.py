import importlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import django_rq
import pytest
from django.db import connection as db_connection

import tests.jobs.handlers  # noqa: F401  (registers the test-only job types in this process)

ROOT = Path(__file__).resolve().parents[1]
QUEUES = ("critical", "high", "default", "low")


@pytest.fixture(autouse=True)
def event_subscribers_fresh():
    """Each test reads the webhook event subscribers afresh: the previous test's endpoints were flushed."""
    from notifications.events import event_subscribers_forget

    event_subscribers_forget()
    yield
    event_subscribers_forget()


@pytest.fixture(autouse=True)
def redis_conn():
    """The real Redis the project uses, flushed around every test."""
    connection = django_rq.get_connection("default")
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture
def run_worker():
    """Run every queued job the way production does, with a burst worker, in this process."""
    from django_rq.workers import get_worker

    def run(*queues: str) -> None:
        worker = get_worker(*(queues or QUEUES), worker_class="jobs.worker.KordantSimpleWorker")
        worker.work(burst=True)
        # rq installs its own SIGINT/SIGTERM handlers; give pytest its own back.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return run


def database_url_for_children() -> str:
    """The test database, as a DATABASE_URL a worker subprocess can use."""
    settings_dict = db_connection.settings_dict
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture
def manage_process(transactional_db, settings):
    """Start `manage.py <command>` as a real process on the test database and Redis."""
    started = []

    def start(*args: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": database_url_for_children(),
            "REDIS_URL": settings.REDIS_URL,
            "JOBS_EXTRA_MODULES": "tests.jobs.handlers",
            "PYTHONPATH": str(ROOT),
        }
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def worker_process(manage_process):
    """Start `manage.py rqworker critical high default low` as a real process."""

    def start(*extra_args: str) -> subprocess.Popen:
        return manage_process("rqworker", *QUEUES, *extra_args)

    return start


@pytest.fixture
def tier_configs(db):
    """The design's tier table (transactional tests flush what the data migration made)."""
    from jobs.models import SchedulerConfig

    defaults = importlib.import_module("jobs.migrations.0003_default_tier_configs").DEFAULTS
    for tier, job_type, frequency, run_on_change, description in defaults:
        SchedulerConfig.objects.get_or_create(
            tier=tier,
            job_type=job_type,
            defaults={"frequency": frequency, "run_on_change": run_on_change, "description": description},
        )


@pytest.fixture
def without_builtin_jobs(db):
    """No built-in periodic jobs: for tests that count runs or forecasts of the schedules they make."""
    from jobs.models import PeriodicJob

    PeriodicJob.objects.filter(builtin=True).delete()


@pytest.fixture
def builtin_jobs(db):
    """The built-in periodic jobs as the data migration makes them, timed from now (time-machine's
    now, if travelling), with their entries as the scheduler's start-up sync writes them;
    transactional tests flush what the migration made. By name."""
    from django.apps import apps

    from jobs.models import PeriodicJob
    from jobs.scheduling import periodic_schedules_sync

    PeriodicJob.objects.filter(builtin=True).delete()
    importlib.import_module("jobs.migrations.0006_builtin_periodic_jobs").create_builtins(apps, None)
    periodic_schedules_sync()
    return {job.name: job for job in PeriodicJob.objects.filter(builtin=True).select_related("schedule")}
