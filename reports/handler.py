"""`reports.generate`: the RQ entry point that makes one period's PDF report."""

from datetime import date
from typing import Literal

from pydantic import model_validator

from jobs import Payload, job_type
from jobs.errors import PermanentJobError
from jobs.registry import ScheduleTick
from kordant.models import Subscription
from reports.errors import ReportContextInvalid, ReportPeriodInvalid, ReportRenderFailed
from reports.periods import period_just_ended
from reports.rendering import pdf_engine_warm_up
from reports.services import report_generate


class GeneratePayload(Payload):
    subscription_id: int
    kind: Literal["weekly", "monthly", "on_demand"]
    period_start: date
    period_end: date

    @model_validator(mode="after")
    def _period_ordered(self):
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


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
    except (ReportPeriodInvalid, ReportContextInvalid, ReportRenderFailed) as exc:
        # The same data and template fail the same way on every attempt.
        raise PermanentJobError(str(exc)) from exc
    return {"report_id": report.pk, "pages": report.page_count, "bytes": report.size_bytes, "checksum": report.checksum}
