"""Every foreign key can be followed back by an index: a cascade, a SET NULL or a reverse
lookup finds its rows without reading the table. Foreign keys whose own index was dropped
(a composite or partial index leads with them) are held to it here, on both databases."""

import uuid

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, models, transaction

from jobs.models import PeriodicJob, Schedule, SchedulerConfig
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db

PROJECT_APPS = ("jobs", "kordant", "notifications", "reports", "scanners")


def foreign_keys():
    for model in apps.get_models():
        if not model.__module__.startswith(PROJECT_APPS) or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, models.ForeignKey):
                yield pytest.param(model, field, id=f"{model._meta.label}.{field.name}")


def lookup_plan(model, field) -> str:
    table, column = (connection.ops.quote_name(name) for name in (model._meta.db_table, field.column))
    query = f"SELECT 1 FROM {table} WHERE {column} = %s"
    target = field.target_field
    key = target.get_db_prep_value(uuid.uuid4() if isinstance(target, models.UUIDField) else 1, connection)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # an index if one can serve, however small the table
            cursor.execute(f"EXPLAIN {query}", [key])
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {query}", [key])
        return " ".join(str(part) for row in cursor.fetchall() for part in row)


@pytest.mark.parametrize(("model", "field"), list(foreign_keys()))
def test_a_foreign_key_is_looked_up_by_an_index(model, field):
    plan = lookup_plan(model, field)

    assert "Index" in plan or "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan


def test_uniqueness_is_what_it_was_for_the_rows_the_partial_indexes_hold():
    subscription = SubscriptionFactory(tier="plus")
    config = SchedulerConfig.objects.create(tier="plus", job_type="jobs.ping", frequency="daily")
    Schedule.objects.get_or_create(subscription=subscription, config=config, defaults={"cron_expression": "0 9 * * *"})
    with pytest.raises(IntegrityError), transaction.atomic():
        Schedule.objects.create(subscription=subscription, config=config, cron_expression="0 9 * * *")

    owner, other = UserFactory(), UserFactory()
    PeriodicJob.objects.create(name="weekly", job_type="jobs.ping", cron_expression="0 9 * * 1", owner=owner)
    PeriodicJob.objects.create(name="weekly", job_type="jobs.ping", cron_expression="0 9 * * 1", owner=other)
    PeriodicJob.objects.create(name="weekly", job_type="jobs.ping", cron_expression="0 9 * * 1")
    for taken_by in (owner, None):
        with pytest.raises(IntegrityError), transaction.atomic():
            PeriodicJob.objects.create(name="weekly", job_type="jobs.ping", cron_expression="0 9 * * 1", owner=taken_by)


@pytest.mark.django_db(transaction=True)  # SQLite rebuilds a table only outside a transaction
def test_the_migration_keeps_a_lived_in_schedule_table_and_its_rules():
    from django.db.migrations.executor import MigrationExecutor

    from jobs.periodic import periodic_job_create
    from jobs.scheduling import schedule_sync_for_subscription
    from jobs.services import enqueue

    config = SchedulerConfig.objects.create(tier="plus", job_type="jobs.ping", frequency="daily")
    subscription = SubscriptionFactory(tier="plus")
    schedule_sync_for_subscription(subscription.pk)
    owner = UserFactory()
    periodic_job_create(name="mine", job_type="jobs.ping", payload={"message": "x"}, frequency="hourly", owner=owner)
    run = enqueue("jobs.ping", {"message": "x"})
    Schedule.objects.filter(subscription=subscription).update(last_run=run)
    columns = ("pk", "subscription_id", "config_id", "periodic_job_id", "last_run_id")
    rows = sorted(Schedule.objects.values_list(*columns))

    before = [("jobs", "0006_builtin_periodic_jobs")]
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(before)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert sorted(Schedule.objects.values_list(*columns)) == rows
    with pytest.raises(IntegrityError), transaction.atomic():
        Schedule.objects.create(subscription=subscription, config=config, cron_expression="0 9 * * *")
    with pytest.raises(IntegrityError), transaction.atomic():
        PeriodicJob.objects.create(name="mine", job_type="jobs.ping", cron_expression="0 9 * * 1", owner=owner)
