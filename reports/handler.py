"""`reports.generate` makes one period's PDF report; `reports.recent` the last few days' (customers schedule it)."""

import zoneinfo
from datetime import date
from typing import Literal

from django.utils import timezone
from pydantic import Field, ValidationInfo, field_validator

from jobs import Payload, job_type
from jobs.errors import PermanentJobError
from jobs.registry import ScheduleTick
from kordant.models import Subscription
from reports.errors import ReportRenderFailed
from reports.periods import last_days, period_just_ended, period_problems
from reports.rendering import pdf_engine_warm_up
from reports.services import report_generate


class GeneratePayload(Payload):
    subscription_id: int = Field(description="The subscription the report is about; its owner gets the e-mail.")
    kind: Literal["weekly", "monthly", "on_demand"] = Field(description="Weekly and monthly come from schedules.")
    period_start: date = Field(description="The first day the report covers (2000-01-01 or later).")
    period_end: date = Field(description="The last day it covers: at most 366 days after the first.")

    # Bounded and ordered here, in the schema every door validates against (API, admin, worker).
    @field_validator("period_start")
    @classmethod
    def _start_bounded(cls, value: date) -> date:
        if problem := period_problems(value, None).get("period_start"):
            raise ValueError(problem)
        return value

    @field_validator("period_end")
    @classmethod
    def _period_bounded(cls, value: date, info: ValidationInfo) -> date:
        if problem := period_problems(info.data.get("period_start"), value).get("period_end"):
            raise ValueError(problem)
        return value


def schedule_payload(tick: ScheduleTick) -> dict:
    kind, start, end = period_just_ended(tick.frequency, tick.planned_for, tick.timezone)
    return {
        "subscription_id": tick.subscription_id,
        "kind": kind,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
    }


@job_type(
    "reports.generate",
    payload=GeneratePayload,
    queue="low",
    timeout=600,
    # Two renderings of one period at once would only race to replace each other's file.
    singleton_key=lambda p: f"report:{p.subscription_id}:{p.kind}:{p.period_start}:{p.period_end}",
    schedule_payload=schedule_payload,
    warm_up=pdf_engine_warm_up,
)
def reports_generate(ctx, payload: GeneratePayload) -> dict:
    """Compile a period's findings, render the PDF, store it and tell the subscriber."""
    try:
        report = report_generate(
            payload.subscription_id, payload.kind, payload.period_start, payload.period_end, progress=ctx.progress
        )
    except Subscription.DoesNotExist:
        raise PermanentJobError(f"subscription {payload.subscription_id} does not exist") from None
    except (ValueError, OverflowError, ReportRenderFailed) as exc:
        # The same data and template fail the same way on every attempt (a bad period, a date out
        # of range, a context the template cannot use): retrying only repeats the work and the alerts.
        raise PermanentJobError(f"{type(exc).__name__}: {exc}") from exc
    return {"report_id": report.pk, "pages": report.page_count, "bytes": report.size_bytes, "checksum": report.checksum}


class RecentPayload(Payload):
    subscription_id: int = Field(description="Your subscription the report is about; you get the e-mail.")
    days: int = Field(7, ge=1, le=366, description="How many days it covers, up to yesterday on your clock.")


def own_subscription(payload: RecentPayload, user) -> dict[str, str]:
    """A customer may schedule reports of their own subscriptions only."""
    if Subscription.objects.filter(pk=payload.subscription_id, user_id=user.pk).exists():
        return {}
    return {"subscription_id": "Not one of your subscriptions."}


@job_type(
    "reports.recent",
    payload=RecentPayload,
    queue="low",
    timeout=600,
    singleton_key=lambda p: f"report:{p.subscription_id}:recent",
    warm_up=pdf_engine_warm_up,
    customer_check=own_subscription,
)
def reports_recent(ctx, payload: RecentPayload) -> dict:
    """Report on the last few days up to yesterday: what a customer's periodic report runs."""
    subscription = Subscription.objects.filter(pk=payload.subscription_id).first()
    if subscription is None:
        raise PermanentJobError(f"subscription {payload.subscription_id} does not exist")
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(subscription.timezone)).date()
    start, end = last_days(today, payload.days)
    # The same work as a requested report of that period: one definition of what a report is.
    return reports_generate(
        ctx, GeneratePayload(subscription_id=subscription.pk, kind="on_demand", period_start=start, period_end=end)
    )
