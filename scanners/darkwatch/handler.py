"""`darkwatch.scan`: the RQ entry point for a subscription's dark-web scan."""

from django.conf import settings

from jobs import job_type
from jobs.registry import subscription_schedule_payload
from scanners.darkwatch.engine import watchlist_scan
from scanners.darkwatch.providers import providers_from_settings
from scanners.darkwatch.services import alerts_notify_pending
from scanners.scanning import ScanPayload, scan_singleton_key, subscription_scan_run


@job_type(
    "darkwatch.scan",
    payload=ScanPayload,
    queue="default",
    timeout=1800,
    singleton_key=scan_singleton_key,
    schedule_payload=subscription_schedule_payload,
)
def darkwatch_scan(ctx, payload: ScanPayload) -> dict:
    """Scan a subscription's watchlist items against breach sources and create alerts."""
    return subscription_scan_run(
        ctx,
        payload.subscription_id,
        providers_from_settings=providers_from_settings,
        scan=watchlist_scan,
        batch_size=settings.DARKWATCH_BATCH_SIZE,
        notify_pending=alerts_notify_pending,
        notified_key="notified_alerts",
    )
