"""factory_boy factories for what the API shows: runs with events, schedules, findings, reports."""

import datetime as dt

import factory
from django.utils import timezone

from jobs.models import JobEvent, JobRun, Schedule, SchedulerConfig
from reports.models import Report
from scanners.darkwatch.models import Alert, Watchlist
from scanners.hometitle.models import RecordedDocument, TitleChange
from scanners.removebrokers.models import DataBroker, RemovalRequest
from scanners.voiceprint.models import AnalysisJob, VoiceSample
from tests.factories import SubscriptionFactory
from tests.scanners.factories import BreachFactory, PropertyFactory, WatchlistItemFactory


class JobRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobRun

    job_type = "jobs.ping"
    payload = factory.LazyAttribute(lambda run: {"message": "hello"})
    queue = "default"
    timeout = 600
    max_attempts = 4
    subscription = factory.SubFactory(SubscriptionFactory)
    user = factory.LazyAttribute(lambda run: run.subscription.user if run.subscription else None)


class JobEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobEvent

    job_run = factory.SubFactory(JobRunFactory)
    at = factory.LazyFunction(timezone.now)
    status = JobRun.Status.PENDING
    message = "enqueued (api)"


class SchedulerConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SchedulerConfig
        django_get_or_create = ("tier", "job_type")

    tier = "premium"
    job_type = "jobs.ping"
    frequency = "daily"


class ScheduleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Schedule

    subscription = factory.SubFactory(SubscriptionFactory)
    config = factory.SubFactory(SchedulerConfigFactory)
    cron_expression = "7 3 * * *"
    timezone = "UTC"
    next_run_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=1))


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Alert

    subscription = factory.SubFactory(SubscriptionFactory)
    item = factory.LazyAttribute(
        lambda alert: WatchlistItemFactory(
            watchlist=Watchlist.objects.get_or_create(subscription=alert.subscription, name="Personal")[0]
        )
    )
    breach = factory.SubFactory(BreachFactory)
    severity = "high"
    first_seen = factory.LazyFunction(timezone.now)


class TitleChangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TitleChange

    property = factory.SubFactory(PropertyFactory)
    document = factory.LazyAttribute(
        lambda change: RecordedDocument.objects.create(
            county=change.property.county,
            document_number=f"doc-{RecordedDocument.objects.count()}-{change.property.pk}",
            parcel_number=change.property.parcel_number,
            parcel_key=change.property.parcel_key,
            document_type="mortgage",
            recorded_date=dt.date(2026, 10, 3),
            source="test",
        )
    )
    severity = "high"
    detected_at = factory.LazyFunction(timezone.now)


class DataBrokerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DataBroker

    name = factory.Sequence(lambda n: f"Broker {n}")
    method = DataBroker.Method.MANUAL
    endpoint = "https://broker.example/opt-out"


class RemovalRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RemovalRequest

    subscription = factory.SubFactory(SubscriptionFactory)
    broker = factory.SubFactory(DataBrokerFactory)
    person = factory.LazyAttribute(lambda request: {"full_name": "Jane Doe"})


class AnalysisJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AnalysisJob

    class Params:
        subscription = factory.SubFactory(SubscriptionFactory)

    sample = factory.LazyAttribute(
        lambda analysis: VoiceSample.objects.create(
            subscription=analysis.subscription, file="voiceprint/x.wav", original_name="call.wav"
        )
    )


class ReportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Report

    subscription = factory.SubFactory(SubscriptionFactory)
    kind = "monthly"
    # A different month per report, so several of one subscription never collide.
    period_start = factory.Sequence(lambda n: dt.date(2000 + n // 12, 1 + n % 12, 1))
    period_end = factory.LazyAttribute(lambda report: report.period_start + dt.timedelta(days=27))
